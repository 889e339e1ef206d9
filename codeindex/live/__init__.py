"""7. keep it live: one warm process per index that keeps the index fresh by itself.

``watcher.py`` turns file-system events into batches of changed paths; ``freshness.py`` turns
batches into scoped updates, one at a time, and tells searches how fresh their answer is;
``service.py`` is what a live process offers (search, symbol, read, status, update);
``server.py`` puts that on MCP over stdio (``codeindex serve``). ``codeindex watch`` runs the
freshness loop alone.
"""
