#!/usr/bin/env bash
# The contract validators from npm (tests/contract/package.json, pinned by
# its package-lock.json), installed with `npm ci` into WORK (the build
# tree, not the sources) when the lock changed, then validate.mjs.
# usage: run.sh SOURCE_DIR WORK_DIR
set -euo pipefail
src=$1 work=$2
mkdir -p "$work"
cp "$src/tests/contract/package.json" "$src/tests/contract/package-lock.json" \
   "$src/tests/contract/validate.mjs" "$work/"
if ! cmp -s "$work/package-lock.json" "$work/node_modules/.vox-lock" 2>/dev/null; then
  (cd "$work" && timeout 600 npm ci --no-audit --no-fund --loglevel=error)
  cp "$work/package-lock.json" "$work/node_modules/.vox-lock"
fi
cd "$work" && timeout 120 node validate.mjs "$src"
