"""Answer queries: the searcher, its per-state cache, ranking (BM25, fusion) and filters."""
