"""Pure chunking logic: source lines → pieces (syntax-aware or flat) → chunks within a token budget."""
