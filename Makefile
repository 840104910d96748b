# The two commands of the README quick start, and their parts. Each target installs what
# is missing (scripts/ensure_deps.sh), configures and builds.
BUILD ?= build
PYTHONS ?= $(shell scripts/find_pythons.sh)
MESON_OPTS ?=
PY ?= $(lastword $(subst $(comma), ,$(PYTHONS)))
comma := ,
export PYTHONPATH := $(CURDIR)/$(BUILD)/python_bindings

# Each interpreter's own venv, .venv/py3.X, with the pinned requirements/dev.txt (build
# tools, test and demo packages, mypy): made once by scripts/ensure_venv.sh, then reused.
# `make` builds the extension for, and runs the suites and the demo with, these.
venv_of = $(shell scripts/ensure_venv.sh py$(shell $(1) -c 'import sys; print("%d.%d" % sys.version_info[:2])') $(1) requirements/dev.txt)
DEV_PYTHONS = $(subst $(eval) ,$(comma),$(foreach py,$(subst $(comma), ,$(PYTHONS)),$(call venv_of,$(py))))
DEV_PY = $(call venv_of,$(PY))

.PHONY: all deps build test demo bench chart run install wheel dev-pythons clean

all: build

deps:
	@scripts/ensure_deps.sh
	@for py in $(subst $(comma), ,$(PYTHONS)); do \
	  v=$$($$py -c 'import sys; print("%d.%d" % sys.version_info[:2])') && \
	  scripts/ensure_venv.sh py$$v $$py requirements/dev.txt >/dev/null || exit 1; \
	done

$(BUILD)/build.ninja: | deps
	meson setup $(BUILD) -Dpythons=$(DEV_PYTHONS) -Dtool_python=$(DEV_PY) $(MESON_OPTS)

build: deps $(BUILD)/build.ninja
	ninja -C $(BUILD)

# Every test of the default build, then one summary line.
test: build
	meson test -C $(BUILD) --print-errorlogs --num-processes 2 || true
	@python3 scripts/test_summary.py $(BUILD)

# The main job: a pipeline across own-GIL interpreters against multiprocessing and threads.
demo: build
	$(DEV_PY) examples/pipeline_demo.py

# Python-level comparisons with the stdlib and third-party peers, from the bench venv
# .venv/bench3.X (requirements/bench.txt): JSON, the table in docs/performance-python.md and
# the chart docs/benchmark.png; memory per spawn
# against CPython's own interpreter create/destroy (docs/performance.md), then every C++
# benchmark case, median of 5 repetitions interleaved in random order (this machine's speed drifts
# within a run), JSON under bench/results/.
BENCH_PY = $(shell scripts/ensure_venv.sh bench$(shell $(PY) -c 'import sys; print("%d.%d" % sys.version_info[:2])') $(PY) requirements/bench.txt)

bench: build
	mkdir -p bench/results
	$(BENCH_PY) bench/python/compare.py --json bench/results/python.json --markdown docs/performance-python.md
	$(BENCH_PY) bench/python/chart.py bench/results/python.json docs/benchmark.png
	$(PY) bench/python/spawn_memory.py --cycles 600 --json bench/results/spawn_memory.json
	$(BUILD)/bench/cpp/xchan_bench --benchmark_repetitions=5 --benchmark_report_aggregates_only=true --benchmark_enable_random_interleaving=true \
	  --benchmark_min_time=0.2 --benchmark_out=bench/results/cpp.json --benchmark_out_format=json

# Redraws docs/benchmark.png from the last make bench (bench/results/python.json).
chart:
	$(BENCH_PY) bench/python/chart.py bench/results/python.json docs/benchmark.png

# Runs a script of yours against the build tree: make run SCRIPT=my_script.py [PY=...]
run: build
	$(PY) $(SCRIPT)

# pip install . into PY's venv .venv/py3.X (make install PY=/path/to/python3.12 for another).
install: deps
	@vpy=$(DEV_PY) && $$vpy -m pip install --quiet --disable-pip-version-check --no-build-isolation . && \
	  echo "xchan installed into $$(dirname $$(dirname $$vpy)): run $$vpy, or activate it"

# Wheels for every interpreter found, into dist/ (what CI installs into clean venvs).
wheel: deps
	@mkdir -p dist
	@for vpy in $(subst $(comma), ,$(DEV_PYTHONS)); do \
	  $$vpy -m pip wheel --quiet --disable-pip-version-check --no-build-isolation --no-deps . -w dist || exit 1; \
	done
	@ls dist/*.whl

# Prints the venv interpreters (for .ci/run's other builds).
dev-pythons:
	@echo $(DEV_PYTHONS)

clean:
	rm -rf $(BUILD) build-ci-* dist
