"""Persistent state: DuckDB metadata (``db``), FAISS vector segments (``segments``), the writer lock (``lock``)."""
