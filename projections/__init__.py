"""Disposable read models folded from the event log (SQLite rows, usearch vectors)."""
