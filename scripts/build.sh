#!/usr/bin/env bash
# Bundles the operator into dist/operator/main.js: plain JavaScript (types stripped, its own modules in one
# file, dependencies left as imports from node_modules), so the image runs it without Node's in-process
# TypeScript transform, which costs ~20–25 MiB of RSS (BENCHMARKS.md, "Operator memory"). The image builds
# it (Dockerfile, stage `build`); `npm run build` does the same locally. dist/ is not committed.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
exec esbuild operator/main.ts --bundle --platform=node --format=esm --target=node24 --packages=external \
  --sourcemap --log-level=warning --outfile=dist/operator/main.js
