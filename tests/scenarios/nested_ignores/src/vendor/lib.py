# cannot be re-included: parent dir excluded
