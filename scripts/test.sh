#!/usr/bin/env bash
# `make test`: install what is missing, build with warnings as errors, run
# the unit tests (plain and under ASan/UBSan), fuzz each decoder for a fixed
# budget, then start private servers on free loopback ports and run the
# integration tests against them. The servers are stopped on every exit
# path, failures included.
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
jobs=$(nproc)

scripts/deps.sh

echo "== build (warnings are errors)"
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DVOX_WERROR=ON -DVOX_TESTS=ON >/dev/null
cmake --build build -j"$jobs" >/dev/null

echo "== unit tests"
(cd build && ctest -L unit --output-on-failure -j"$jobs")

echo "== the contract as data, by validators from npm"
(cd build && ctest -L contract --output-on-failure)

echo "== unit tests under ASan/UBSan"
cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DVOX_WERROR=ON -DVOX_SANITIZE=ON >/dev/null
cmake --build build-asan -j"$jobs" >/dev/null
(cd build-asan && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  ctest -L unit --output-on-failure -j"$jobs")

echo "== fuzzing the decoders (libFuzzer, fixed budget)"
scripts/fuzz.sh

echo "== integration tests (private servers)"
tmp=$(mktemp -d /tmp/vox-test.XXXXXX)
chmod 755 "$tmp"
cleanup() {
  local rc=$?
  "$top/scripts/servers.sh" stop "$tmp" || true
  # on failure, keep every log of the run (the directory goes away)
  if [ "$rc" -ne 0 ]; then
    rm -rf "$top/build/test-logs"
    mkdir -p "$top/build/test-logs"
    (cd "$tmp" && find . -name '*.log' -exec cp --parents {} "$top/build/test-logs/" \;) || true
    echo "test: logs of this run kept in build/test-logs" >&2
  fi
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
VOX_PG_FSYNC=off scripts/servers.sh start "$tmp" >/dev/null
# shellcheck disable=SC1091
. "$tmp/env"
export VOX_TEST_TMP=$tmp
# the servers' own secrets join those the tests record (th_secret)
cut -d: -f5 "$tmp/pg/pgpass" >> "$tmp/secrets.list"
# the streams are the operator's: apply them on the shared server before
# any actor starts (the actors only check them)
build/bin/voxctl streams apply >/dev/null
(cd build && ctest -L integration --output-on-failure)
# test_chaos writes its report (seed, faults, invariants, result) there
if [[ ! -f "$tmp/chaos-report.txt" ]]; then
  echo "test: test_chaos wrote no report" >&2
  exit 1
fi
cp "$tmp/chaos-report.txt" build/chaos-report.txt
cat build/chaos-report.txt # it begins with its own "== chaos report"
echo "== valgrind memcheck of every actor (test_inputs)"
scripts/valgrind.sh test_inputs
echo "== secrets never in logs"
scripts/check_secrets.sh "$tmp"
echo "== all tests passed"
