#!/usr/bin/env bash
# Secrets never in logs: fails when a log under DIR (every *.log file: the
# actors' logs the integration tests wrote, nats-server's and PostgreSQL's)
# contains one of the secrets listed in DIR/secrets.list (one a line,
# appended by the tests with th_secret: passwords, vault master keys,
# credential configs). Prints which file holds which entry of the list (by
# line number, never the secret itself).
#
#   check_secrets.sh DIR
set -euo pipefail

dir=${1:?usage: check_secrets.sh DIR}
list=$dir/secrets.list
[ -s "$list" ] || { echo "secrets: $list is missing or empty: nothing was checked" >&2; exit 1; }

mapfile -t logs < <(find "$dir" -type f -name '*.log' | sort)
[ "${#logs[@]}" -gt 0 ] || { echo "secrets: no log under $dir" >&2; exit 1; }

found=0 n=0 lineno=0
while IFS= read -r secret || [ -n "$secret" ]; do
  lineno=$((lineno + 1))
  [ -n "$secret" ] || continue
  n=$((n + 1))
  if hits=$(grep -lF -e "$secret" -- "${logs[@]}"); then
    while IFS= read -r f; do
      echo "secrets: entry $lineno of $list appears in $f" >&2
    done <<<"$hits"
    found=1
  fi
done < "$list"
if [ "$found" -ne 0 ]; then
  echo "secrets: FAILED: a secret is in a log" >&2
  exit 1
fi
echo "secrets: $n secrets, ${#logs[@]} logs: none found"
