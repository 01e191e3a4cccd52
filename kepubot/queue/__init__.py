"""The SQLite queue: the one source of truth. All SQL lives in this package."""
