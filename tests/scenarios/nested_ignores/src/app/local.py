# a file named local is not matched by local/
