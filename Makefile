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

unit: build
	@cd $(BUILD) && ctest -L unit --output-on-failure

clean:
	rm -rf $(BUILD) build-asan build-fuzz

format:
	clang-format -i $$(git ls-files '*.c' '*.h')
