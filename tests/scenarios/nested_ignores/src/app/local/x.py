# ignored dir (nested rule)
