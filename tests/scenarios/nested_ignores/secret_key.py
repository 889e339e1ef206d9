# ignored
