# negated back in
