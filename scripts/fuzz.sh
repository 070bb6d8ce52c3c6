#!/usr/bin/env bash
# Builds the libFuzzer targets with clang (ASan + UBSan), seeds each one's
# corpus from the contract's test vectors, and fuzzes each decoder for
# VOX_FUZZ_SECONDS (default 8; about a minute in all). Skips cleanly, with
# a message, when clang or its fuzzer runtime is not installed.
# Before fuzzing, each target replays its regression vectors
# (tests/fuzz/regress/<target>/, each file run once, whole). A crash leaves
# its input in build-fuzz/crashes/, is copied into
# tests/fuzz/regress/<target>/ to be committed as a new vector, and fails
# the run (tests/fuzz/regress/README.md).
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
seconds=${VOX_FUZZ_SECONDS:-8}

if ! command -v clang >/dev/null; then
  echo "fuzz: clang not installed, skipping"; exit 0
fi
probe=$(mktemp -d)
trap 'rm -rf "$probe"' EXIT
echo 'int LLVMFuzzerTestOneInput(const char *d, unsigned long n){(void)d;(void)n;return 0;}' > "$probe/p.c"
if ! clang -fsanitize=fuzzer "$probe/p.c" -o "$probe/p" 2>/dev/null; then
  echo "fuzz: clang has no libFuzzer runtime (libclang-rt-dev), skipping"; exit 0
fi

CC=clang cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DVOX_FUZZ=ON -DVOX_TESTS=OFF >/dev/null
cmake --build build-fuzz -j"$(nproc)" --target fuzz >/dev/null
mkdir -p build-fuzz/crashes

# replay: every regression vector of target $2, each once, as a whole file
replay() {
  local bin=$1 name=$2 dir=tests/fuzz/regress/$2
  [ -d "$dir" ] || return 0
  local files=("$dir"/*)
  [ -e "${files[0]}" ] || return 0
  "$bin" -runs=1 "${files[@]}" > build-fuzz/"$name".replay.log 2>&1 || {
    echo "fuzz: $name: a regression vector fails again, see build-fuzz/$name.replay.log"
    tail -30 build-fuzz/"$name".replay.log
    exit 1
  }
  echo "fuzz: $name: ${#files[@]} regression vectors replayed"
}

# keep: a crash found is kept as a regression vector of target $1
keep() {
  local name=$1 f
  mkdir -p tests/fuzz/regress/"$name"
  for f in build-fuzz/crashes/"$name"-*; do
    [ -e "$f" ] || continue
    cp "$f" tests/fuzz/regress/"$name"/"$(basename "$f" | sed "s/^$name-//")"
    echo "fuzz: kept $f as tests/fuzz/regress/$name/ (commit it with the fix)"
  done
}

# run: fuzz binary $1 (target $2) for $seconds on its corpus, inputs up to
# $3 bytes; a crash is kept as a regression vector and fails the run
run() {
  local bin=$1 name=$2 corpus=build-fuzz/corpus/$2
  echo "fuzz: $name for ${seconds}s (corpus $(ls "$corpus" | wc -l))"
  "$bin" -max_total_time="$seconds" -max_len="$3" -timeout=5 \
    -artifact_prefix=build-fuzz/crashes/"$name"- -print_final_stats=1 \
    "$corpus" 2> build-fuzz/"$name".log || {
      echo "fuzz: $name FAILED, see build-fuzz/$name.log and build-fuzz/crashes/"
      tail -30 build-fuzz/"$name".log
      keep "$name"
      exit 1
    }
  grep -E "stat::number_of_executed_units" build-fuzz/"$name".log | sed 's/^/  /'
}

for vec in subjects/vectors/*.vec; do
  kind=$(basename "$vec" .vec)
  target=build-fuzz/bin/fuzz_${kind//./_}
  corpus=build-fuzz/corpus/$kind
  mkdir -p "$corpus"
  replay "$target" "$kind"
  # every case's bytes (valid and invalid) seed the corpus (perl-base is
  # part of every Debian system)
  perl -ne 'BEGIN { $n = 0 }
    if (/^== /) { $n++ }
    elsif (s/^hex://) { s/\s+//g; $h{$n} .= $_ }
    END { for (keys %h) { open(my $f, ">", "'"$corpus"'/vec$_") or die;
          binmode $f; print $f pack("H*", $h{$_}); close $f } }' "$vec"
  run "$target" "$kind" 4096
done
# request: fuzz request decoder $1 ("query_request") for $seconds, inputs
# up to $2 bytes, seeded with its regression vectors and whatever its
# corpus already holds
request() {
  local name=$1 corpus=build-fuzz/corpus/$1
  mkdir -p "$corpus"
  cp tests/fuzz/regress/"$name"/* "$corpus"/
  replay build-fuzz/bin/fuzz_"$name" "$name"
  run build-fuzz/bin/fuzz_"$name" "$name" "$2"
}
# vox-query's, with a few requests written by hand besides
corpus=build-fuzz/corpus/query_request
mkdir -p "$corpus"
printf '\x80' > "$corpus/empty"
printf '\x81\xa5limit\x0a' > "$corpus/limit"
printf '\x82\xa6status\xa9completed\xa5since\xcf\x00\x00\x01\x9a\x1b\x2c\x3d\x4e' > "$corpus/calls"
printf '\x81\xa6before\xb0AQ5AAAAAAAAAAAAq' > "$corpus/cursor"
printf '\x81\xa5phone\xad+447700900123' > "$corpus/phone"
request query_request 4200
# billing.authorize's and credentials.*'s
request authorize_request 4200
request credentials_request 8192
echo "fuzz: all decoders ran clean"
