"""What changed: discovery, ignore rules, the stat-gated scan, the Merkle tree and the update plan."""
