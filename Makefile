# Vigil's entry points. On a fresh Debian 12, as root: `make demo` and `make test` (README).
# Every target first runs scripts/setup.sh, which installs what is missing with apt-get.
#
#   make test           setup, configure build/ (RelWithDebInfo, Ninja, ccache), build, ctest
#   make demo           setup, build, then the virtual-IP failover demo (root: namespaces)
#   make build          setup, configure and build only
#   make test-sanitize  the same tests built with ASan + UBSan in build-asan/
#   make fuzz           libFuzzer targets (clang) in build-fuzz/, each for FUZZ_SECONDS
#   make bench          build, then bench/run_raft_bench.sh (Vigil vs etcd, docs/BENCHMARKS.md)
#                       and every benchmark binary under build/bench/
#   make clean          remove the build directories
#
# Knobs: JOBS (parallel builds and tests, default 2: two cores), TEST_TIMEOUT (seconds per
# test without its own TIMEOUT), FUZZ_SECONDS, CMAKE_FLAGS (extra -D options).

SHELL := /bin/bash
.DEFAULT_GOAL := test

BUILD_DIR ?= build
ASAN_DIR ?= build-asan
FUZZ_DIR ?= build-fuzz
BUILD_TYPE ?= RelWithDebInfo
JOBS ?= 2
TEST_TIMEOUT ?= 600
FUZZ_SECONDS ?= 60
# clang 14 cannot compile libstdc++ 12's std::expected; clang 16 can, once told that it
# implements C++20 concepts fully (P0848), which it does but does not advertise.
FUZZ_CXX ?= clang++-16
FUZZ_CXXFLAGS ?= -U__cpp_concepts -D__cpp_concepts=202002L
CMAKE_FLAGS ?=

.PHONY: setup configure build test demo test-sanitize fuzz bench clean

setup:
	scripts/setup.sh

configure: setup
	cmake -S . -B $(BUILD_DIR) -G Ninja -DCMAKE_BUILD_TYPE=$(BUILD_TYPE) $(CMAKE_FLAGS)

build: configure
	cmake --build $(BUILD_DIR) -j $(JOBS)

test: build
	ctest --test-dir $(BUILD_DIR) --output-on-failure -j $(JOBS) --timeout $(TEST_TIMEOUT)

# The VIP failover demo (src/cli/vip_demo.h): three agents in network namespaces, nginx behind
# a VIP, the serving machine killed. Without root it points to `vigil demo --store`.
demo: build
	$(BUILD_DIR)/vigil demo

test-sanitize: setup
	cmake -S . -B $(ASAN_DIR) -G Ninja -DCMAKE_BUILD_TYPE=$(BUILD_TYPE) -DVIGIL_SANITIZE=ON \
	  $(CMAKE_FLAGS)
	cmake --build $(ASAN_DIR) -j $(JOBS)
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
	  ctest --test-dir $(ASAN_DIR) --output-on-failure -j $(JOBS) \
	  --timeout $$(( $(TEST_TIMEOUT) * 3 ))

fuzz: setup
	scripts/setup-fuzz.sh
	cmake -S . -B $(FUZZ_DIR) -G Ninja -DCMAKE_BUILD_TYPE=$(BUILD_TYPE) -DVIGIL_FUZZ=ON \
	  -DCMAKE_CXX_COMPILER=$(FUZZ_CXX) "-DCMAKE_CXX_FLAGS=$(FUZZ_CXXFLAGS)" $(CMAKE_FLAGS)
	@targets=$$(ninja -C $(FUZZ_DIR) -t targets all \
	            | sed -n 's/^\([A-Za-z0-9_]*_fuzz\): phony$$/\1/p' | sort -u); \
	if [ -z "$$targets" ]; then echo "make fuzz: no fuzz targets"; exit 1; fi; \
	echo "make fuzz: building $$targets"; \
	ninja -C $(FUZZ_DIR) -j $(JOBS) $$targets || exit 1; \
	for t in $$targets; do \
	  bin=$$(find $(FUZZ_DIR) -type f -name "$$t" -perm -u+x | head -n1); \
	  mkdir -p $(FUZZ_DIR)/corpus/$$t; \
	  echo "make fuzz: $$t for $(FUZZ_SECONDS) s (new inputs in $(FUZZ_DIR)/corpus/$$t)"; \
	  "$$bin" -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 \
	    $(FUZZ_DIR)/corpus/$$t tests/fuzz/corpus/$$t || exit 1; \
	done

bench: build
	bench/run_raft_bench.sh $(BUILD_DIR) --out $(BUILD_DIR)/raft-bench.md
	@found=0; \
	for b in $$(find $(BUILD_DIR)/bench -type f -perm -u+x \( -name '*_bench' -o -name 'bench_*' \) \
	            2>/dev/null | sort); do \
	  found=1; echo "== $$b"; "$$b" || exit 1; \
	done; \
	if [ $$found -eq 0 ]; then echo "make bench: no benchmarks built yet (bench/)"; fi

clean:
	rm -rf $(BUILD_DIR) $(ASAN_DIR) $(FUZZ_DIR)
