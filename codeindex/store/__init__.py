"""Storage: DuckDB metadata, postings and FAISS segments."""
