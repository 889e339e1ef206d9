# a source dir named build: no manifest beside it
