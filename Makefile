# Thin wrapper: the real build is CMake (CMakeLists.txt); the scripts in
# scripts/ install what is missing and manage the private servers.
BUILD ?= build

.PHONY: all build run test unit bench release package clean format

all: build

build:
	@scripts/deps.sh
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DVOX_WERROR=ON -DVOX_TESTS=ON >/dev/null
	@cmake --build $(BUILD) -j$$(nproc) -- --no-print-directory -s

# Only what running needs: no test tools, no test binaries.
run:
	@scripts/deps.sh run
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DVOX_WERROR=ON -DVOX_TESTS=OFF >/dev/null
	@cmake --build $(BUILD) -j$$(nproc) -- --no-print-directory -s
	@scripts/run.sh

test:
	@scripts/test.sh

# The standard benchmark suite on private servers (issue #10); writes
# build/bench/report.{md,json,png}. BENCH_ARGS=--quick for the short one.
bench: build
	@scripts/bench.sh all $(BENCH_ARGS)

# Release with Debian's hardening flags, warnings as errors (CI builds it).
release:
	@scripts/release-build.sh

# The Debian packages (vox, libvox-client-dev), built and checked in a
# scratch root (CI builds them).
package:
	@scripts/package.sh

unit: build
	@cd $(BUILD) && ctest -L unit --output-on-failure

clean:
	rm -rf $(BUILD) build-asan build-fuzz build-release build-package

format:
	clang-format -i $$(git ls-files '*.c' '*.h')
