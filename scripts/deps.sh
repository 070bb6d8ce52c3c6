#!/usr/bin/env bash
# Installs the Debian bookworm packages vox needs, skipping those already
# present; runs apt-get update at most once. `deps.sh run`: what building
# and running vox needs (make run); `deps.sh package`: that and the
# Debian packaging tools (make package); `deps.sh` alone: what building
# and running need and what the tests and the benchmark need (make test,
# make bench).
set -euo pipefail

packages=(build-essential cmake pkg-config libnats-dev nats-server libpq-dev
          postgresql libmsgpack-dev libsodium-dev openssl
          libmicrohttpd-dev libsystemd-dev)
if [ "${1:-all}" = package ]; then
  # make package: the Debian packaging tools (the build's own packages
  # are in debian/control's Build-Depends, the same as above)
  packages+=(debhelper dpkg-dev fakeroot help2man systemd)
elif [ "${1:-all}" != run ]; then
  packages+=(libcmocka-dev clang libclang-rt-14-dev valgrind gnuplot-nox
             python3 systemd curl
             golang-go golang-github-nats-io-go-nats-dev
             golang-github-vmihailenco-msgpack.v5-dev golang-golang-x-crypto-dev)
fi
# A fresh machine may lack a package the tests use but that the build does
# not: keep this list the single place that says what vox needs. python3
# (with its standard library, which python3-minimal lacks) writes the
# benchmark report (scripts/bench_report.py). systemd brings
# systemd-analyze, which checks deploy/systemd (test_deploy); it need not
# be the init system. curl scrapes the actors' /metrics in the tests. The
# Go kit (clients/go) builds against Debian's packaged Go sources.

# the contract's validators come from npm (tests/contract): Node.js and
# npm, Debian's when the machine has none
if [ "${1:-all}" = all ] && ! command -v npm >/dev/null 2>&1; then
  packages+=(nodejs npm)
fi

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" \
    || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "deps: installing ${missing[*]}"
sudo=()
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "deps: need root or sudo to install ${missing[*]}" >&2; exit 1; }
  sudo=(sudo)
fi
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -qq
"${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
# Debian's postgresql package starts a system cluster on 5432; vox never uses
# it (it runs a private cluster), so leave it as the package set it up.
