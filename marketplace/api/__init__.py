"""The marketplace REST API (FastAPI): `create_app(engine, blobs)` in `app.py`."""
