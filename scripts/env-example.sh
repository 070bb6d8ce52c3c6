#!/usr/bin/env bash
# env-example.sh BINARY OUT: an environment file listing every variable
# BINARY reads (from its --help), each commented out with its default,
# for /etc/vox/<binary>.env. Uncomment and set what differs.
set -euo pipefail
bin=$1 out=$2
name=$(basename "$bin")
{
  echo "# /etc/vox/$name.env: the settings of $name (systemd's EnvironmentFile)."
  echo "# Every variable it reads, as \`$name --help\` lists them; uncomment"
  echo "# and set what differs from the default. Keep it 0600 root:root when"
  echo "# it holds a password or a DSN."
  "$bin" --help | awk '
    /^  VOX_/ {
      var = $1
      line = $0
      sub(/^  VOX_[A-Z0-9_]+ +/, "", line)
      def = ""
      if (match(line, /\(default: [^)]*\)/))
        def = substr(line, RSTART + 10, RLENGTH - 11)
      printf "\n# %s\n#%s=%s\n", line, var, def
    }'
} > "$out.tmp"
mv "$out.tmp" "$out"
