"""The marketplace store: SQL tables (SQLite by default, PostgreSQL by URL) and the blob store."""
