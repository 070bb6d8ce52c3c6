#!/usr/bin/env bash
# `make release`: the optimised build a package is made of, with Debian's
# hardening flags (dpkg-buildflags: -O2, -fstack-protector-strong,
# _FORTIFY_SOURCE, -Wformat -Werror=format-security, relro) on top of
# vox's own warnings, as errors. The tests are built too, so their code
# stays clean under -O2's deeper format checks; they are not run here.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
dir=${BUILD_RELEASE:-build-release}
CFLAGS="$(dpkg-buildflags --get CFLAGS) $(dpkg-buildflags --get CPPFLAGS)" \
LDFLAGS="$(dpkg-buildflags --get LDFLAGS)" \
  cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=Release -DVOX_WERROR=ON >/dev/null
cmake --build "$dir" -j"$(nproc)" -- --no-print-directory -s
echo "release: $dir/bin built warning-free with $(dpkg-buildflags --get CFLAGS)"
