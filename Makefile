# The two commands of the README quick start, and their parts. Each target installs what
# is missing (scripts/ensure_deps.sh), configures and builds.
BUILD ?= build
MESON_OPTS ?=

.PHONY: all deps build test demo bench clean

all: build

deps:
	@scripts/ensure_deps.sh

$(BUILD)/build.ninja: | deps
	meson setup $(BUILD) $(MESON_OPTS)

build: deps $(BUILD)/build.ninja
	ninja -C $(BUILD)

# Every test of the default build, then one summary line.
test: build
	meson test -C $(BUILD) --print-errorlogs --num-processes 2 || true
	@python3 scripts/test_summary.py $(BUILD)

# The main job. Until the Python module lands: the C++ benchmark's headline cases.
demo: build
	$(BUILD)/bench/cpp/xchan_bench --benchmark_min_time=0.3 \
	  --benchmark_filter='k64|Batched|Mpmc|Lockfree|RoundTrip'

# All C++ benchmark cases, median of 5 repetitions, JSON under bench/results/.
bench: build
	mkdir -p bench/results
	$(BUILD)/bench/cpp/xchan_bench --benchmark_repetitions=5 --benchmark_report_aggregates_only=true \
	  --benchmark_min_time=0.2 --benchmark_out=bench/results/cpp.json --benchmark_out_format=json

clean:
	rm -rf $(BUILD) build-ci-*
