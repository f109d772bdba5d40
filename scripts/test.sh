#!/usr/bin/env bash
# The project's test command (`npm test`): unit and integration suites, the
# integration suite against the real local stack (started if not running).
# Fails when any test fails or is skipped: a skipped integration test would
# hide a broken stack behind a green run.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=with-node.sh
source "$ROOT/scripts/with-node.sh"
cd "$ROOT"
report="$(mktemp -d)/vitest-report.json"
status=0
vitest run --reporter=default --reporter=json --outputFile.json="$report" "$@" || status=$?
node scripts/check-test-report.mjs "$report" || status=1
exit "$status"
