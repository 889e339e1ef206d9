# ignored through .git/info/exclude
