# Thin wrapper over CMake. `make run` and `make test` install what is missing first.
#   make        Release build at build/f3connect
#   make run    build, then start the platform on the embedded SQLite default
#   make sandbox  build, then the whole loop on simulated providers with demo orders
#               (SANDBOX_ARGS="--orders 20 --until-done" passes options)
#   make test   Debug build with ASan + UBSan, then the whole suite (ctest)
#   make lint   clang-format check, clang-tidy, cppcheck
#   make bench  the event bus benchmark against graphile-worker (bench/README.md);
#               BENCH_ARGS="--pg-events 5000" passes options to bench/bus/run.sh
SHELL := /bin/bash
JOBS ?= $(shell nproc 2>/dev/null || echo 2)

.PHONY: all build deps run sandbox test lint format clean bench

all: build

deps:
	@scripts/install-deps.sh build

build: deps
	@cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DBUILD_TESTING=OFF >/dev/null
	@cmake --build build -j $(JOBS)

run: build
	./build/f3connect serve

sandbox: build
	./build/f3connect sandbox $(SANDBOX_ARGS)

test:
	@scripts/install-deps.sh test
	@cmake -S . -B build-debug -DCMAKE_BUILD_TYPE=Debug >/dev/null
	@cmake --build build-debug -j $(JOBS)
	@cd build-debug && set -o pipefail && ctest --output-on-failure -j $(JOBS) 2>&1 | tee ctest.log; \
	  rc=$$?; grep -E "tests passed, [0-9]+ tests? failed" ctest.log | tail -1; exit $$rc

lint:
	@scripts/install-deps.sh lint test
	@cmake -S . -B build-debug -DCMAKE_BUILD_TYPE=Debug >/dev/null
	@scripts/lint.sh build-debug

bench: deps
	@bench/bus/run.sh $(BENCH_ARGS)

format:
	@clang-format -i $$(git ls-files '*.c' '*.h')

clean:
	rm -rf build build-debug
