"""The indexer: follows ComputeMarket's events into the SQL store, undoing reorganized blocks."""
