#!/usr/bin/env bash
# Back up a directory into a dated tarball.
set -euo pipefail

BACKUP_DIR="${BACKUP_DIR:-/var/backups}"

log() {
  echo "[$(date +%H:%M:%S)] $*" >&2
}

backup() {
  local src="$1"
  local dest="$BACKUP_DIR/$(basename "$src")-$(date +%F).tar.gz"
  tar -czf "$dest" "$src"
  log "wrote $dest"
}

for dir in "$@"; do
  backup "$dir"
done
