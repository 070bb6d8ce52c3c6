#!/usr/bin/env bash
# Unit: what is generated and committed is what the generators write now.
# `test_fresh.sh vectors SRC`: subjects/vectors (the .vec files and their
# JSON form) against generate.py's output; `test_fresh.sh contract SRC
# TOOL`: subjects/schema (the JSON Schemas and the AsyncAPI document)
# against vox-contract's. A stale file fails, naming the command that
# rewrites it.
set -euo pipefail
what=$1 src=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
case $what in
  vectors)
    python3 "$src/subjects/vectors/generate.py" "$tmp" >/dev/null
    committed=$src/subjects/vectors
    fix="python3 subjects/vectors/generate.py"
    files=$(cd "$tmp" && find . -type f \( -name '*.vec' -o -name '*.json' \) | sort) ;;
  contract)
    "$3" "$tmp" >/dev/null
    committed=$src/subjects/schema
    fix="build/bin/vox-contract subjects/schema"
    files=$(cd "$tmp" && find . -type f | sort) ;;
  *) echo "usage: test_fresh.sh vectors|contract SRC [TOOL]" >&2; exit 2 ;;
esac
stale=0
for f in $files; do
  if ! cmp -s "$tmp/$f" "$committed/$f"; then
    echo "stale: $committed/${f#./}" >&2
    stale=1
  fi
done
# and nothing committed that the generator no longer writes
extra=$(cd "$committed" && find . -type f \( -name '*.vec' -o -name '*.json' \) | sort |
        comm -23 - <(echo "$files"))
[ -n "$extra" ] && { echo "not generated any more: $extra" >&2; stale=1; }
[ $stale = 0 ] || { echo "regenerate with: $fix" >&2; exit 1; }
echo "fresh: $(echo "$files" | wc -l) files of $committed"
