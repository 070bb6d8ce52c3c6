# Thin wrapper: the real build is CMake (CMakeLists.txt); the scripts in
# scripts/ install what is missing and manage the private servers.
BUILD ?= build

.PHONY: all build run test unit bench clean format

all: build

build:
	@scripts/deps.sh
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DVOX_WERROR=ON >/dev/null
	@cmake --build $(BUILD) -j$$(nproc) -- --no-print-directory -s

run: build
	@scripts/run.sh

test:
	@scripts/test.sh

# The standard benchmark suite on private servers (issue #10); writes
# build/bench/report.{md,json,png}. BENCH_ARGS=--quick for the short one.
bench: build
	@scripts/bench.sh all $(BENCH_ARGS)

unit: build
	@cd $(BUILD) && ctest -L unit --output-on-failure

clean:
	rm -rf $(BUILD) build-asan build-fuzz

format:
	clang-format -i $$(git ls-files '*.c' '*.h')
