# ignored dir
