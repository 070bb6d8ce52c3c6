#!/usr/bin/env bash
# `make package`: the Debian packages vox and libvox-client-dev, built by
# dpkg-buildpackage from a copy of the tree in build-package/, then
# checked as an operator would meet them, in a scratch root (dpkg -x):
# what is in them (and what is not: tests, bench, examples), voxctl and
# every actor answering --version from there, the man pages and the bash
# completion, the installed units verified by systemd-analyze, and a
# bridge built against the installed headers and library through
# pkg-config. Ends with "== package ok". Every step is bounded in time.
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
scripts/deps.sh package
out=$top/build-package
version=$(sed -n 's/^project(vox VERSION \([0-9.]*\).*/\1/p' CMakeLists.txt)
rm -rf "$out"
src=$out/src/vox-$version
mkdir -p "$src"
fail() { echo "package: FAIL: $*" >&2; exit 1; }

# the tree as git knows it (committed or not, ignored files left out)
git ls-files -z --cached --others --exclude-standard |
  tar --null -T - -cf - | tar -xf - -C "$src"

echo "package: dpkg-buildpackage (log in $out/build.log)"
if ! (cd "$src" && timeout 1800 dpkg-buildpackage -b -us -uc \
        -j"$(nproc)") > "$out/build.log" 2>&1; then
  tail -40 "$out/build.log" >&2
  fail "dpkg-buildpackage"
fi
arch=$(dpkg --print-architecture)
vox_deb=$out/src/vox_${version}_$arch.deb
dev_deb=$out/src/libvox-client-dev_${version}_$arch.deb
[ -s "$vox_deb" ] && [ -s "$dev_deb" ] || fail "no .deb in $out/src"

# contents: the binaries, units, docs and /etc examples; nothing of tests
dpkg-deb -c "$vox_deb" | awk '{print $6}' > "$out/vox.list"
dpkg-deb -c "$dev_deb" | awk '{print $6}' > "$out/dev.list"
for f in ./usr/bin/voxctl ./usr/bin/vox-calls ./usr/bin/vox-billing \
         ./usr/bin/vox-leads ./usr/bin/vox-vault ./usr/bin/vox-query \
         ./lib/systemd/system/vox-billing@.service ./lib/systemd/system/vox.target \
         ./etc/vox/vox-billing.env.example ./etc/vox/voxctl.env.example \
         ./etc/vox/nats/single.conf ./usr/share/doc/vox/operations.md \
         ./usr/share/man/man1/voxctl.1.gz ./usr/share/man/man1/vox-billing.1.gz \
         ./usr/share/bash-completion/completions/voxctl; do
  grep -qxF "$f" "$out/vox.list" || fail "vox lacks $f"
done
grep -E '/(test_|vox-bench|vox-example|vox-test)' "$out/vox.list" "$out/dev.list" &&
  fail "a test, bench or example binary is packaged"
grep -q '/libvoxclient\.a$' "$out/dev.list" || fail "no libvoxclient.a"
grep -q '/usr/include/vox/client\.h$' "$out/dev.list" || fail "no vox/client.h"
grep -q '/pkgconfig/vox-client\.pc$' "$out/dev.list" || fail "no vox-client.pc"

root=$out/root
mkdir -p "$root"
dpkg -x "$vox_deb" "$root"
dpkg -x "$dev_deb" "$root"

# the binaries run from the scratch root, with the machine's libraries
v=$(timeout 10 "$root/usr/bin/voxctl" --version)
[ "$v" = "voxctl $version" ] || fail "voxctl --version said '$v'"
echo "package: $v"
for a in vox-calls vox-billing vox-leads vox-vault vox-query; do
  v=$(timeout 10 "$root/usr/bin/$a" --version)
  [ "$v" = "$a $version" ] || fail "$a --version said '$v'"
done
zcat "$root/usr/share/man/man1/voxctl.1.gz" | grep -q '^\.SH' || fail "voxctl.1 has no sections"
zcat "$root/usr/share/man/man1/vox-billing.1.gz" | grep -q 'VOX_PG_DSN' ||
  fail "vox-billing.1 does not list the environment"
bash -n "$root/usr/share/bash-completion/completions/voxctl"
got=$(bash -c '. "$1"; COMP_WORDS=(voxctl dlq ""); COMP_CWORD=2; _voxctl;
               echo "${COMPREPLY[*]}"' x "$root/usr/share/bash-completion/completions/voxctl")
[ "$got" = "list show replay --help" ] || fail "completion of 'voxctl dlq': '$got'"

# the installed units, each template as an instance; systemd-analyze
# exits 0 on warnings too, so any output is a failure
units=$out/units
mkdir -p "$units"
for f in "$root"/lib/systemd/system/*; do
  g=$(basename "$f" | sed 's/@\./@1./')
  sed "s#/usr/bin/#$root/usr/bin/#" "$f" > "$units/$g"
done
(cd "$units" && for u in *; do
   SYSTEMD_LOG_LEVEL=warning timeout 60 systemd-analyze verify --man=no "./$u"
 done) > "$out/verify.log" 2>&1 || { cat "$out/verify.log" >&2; fail "systemd-analyze verify"; }
[ -s "$out/verify.log" ] && { cat "$out/verify.log" >&2; fail "systemd-analyze warned"; }
grep -q '^Type=notify' "$root/lib/systemd/system/vox-billing@.service" ||
  fail "vox-billing@.service is not Type=notify"

# a bridge against the installed client: headers, archive, pkg-config
multiarch=$(dpkg-architecture -qDEB_HOST_MULTIARCH)
export PKG_CONFIG_SYSROOT_DIR=$root
export PKG_CONFIG_PATH=$root/usr/lib/$multiarch/pkgconfig
flags=$(pkg-config --cflags --libs --static vox-client) || fail "pkg-config vox-client"
timeout 120 cc -std=c11 -D_DEFAULT_SOURCE -o "$out/bridge" \
  "$root/usr/share/doc/libvox-client-dev/examples/bridge.c" $flags ||
  fail "the example bridge does not build against the package"
set +e
"$out/bridge" >/dev/null 2>"$out/bridge.err"; rc=$?
set -e
[ "$rc" = 2 ] && grep -q "usage: vox-example-bridge" "$out/bridge.err" ||
  fail "the packaged bridge did not print its usage (exit $rc)"

echo "== package ok: $(basename "$vox_deb") $(basename "$dev_deb")"
