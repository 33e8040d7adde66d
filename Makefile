# Two commands on a fresh machine: `make demo` and `make test`.
# Every target bootstraps .venv (Python >= 3.11 and pip are all it needs).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test unit functional coverage codegen lint fmt bench mock clean

$(STAMP): pyproject.toml hatch_build.py src/massivekit/proxy/_fanout.c
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/massivekit demo

test: $(STAMP)
	$(BIN)/python -m pytest tests -q -p no:cacheprovider
	@echo "the proxy again on its pure-Python path (no C fan-out core):"
	MASSIVEKIT_PURE_PYTHON=1 $(BIN)/python -m pytest -q -p no:cacheprovider \
		tests/functional/test_proxy_*.py tests/unit/test_proxy_router.py tests/unit/test_send_buffer.py

unit: $(STAMP)
	$(BIN)/python -m pytest tests/unit -q

functional: $(STAMP)
	$(BIN)/python -m pytest tests/functional -q

# Regenerate committed code from ../shared/massive-spec (checks SHA256SUMS first).
codegen: $(STAMP)
	MASSIVEKIT_SPEC_DIR=$${MASSIVEKIT_SPEC_DIR:-../shared/massive-spec} $(BIN)/python tools/codegen_mock.py
	MASSIVEKIT_SPEC_DIR=$${MASSIVEKIT_SPEC_DIR:-../shared/massive-spec} $(BIN)/python tools/codegen_rest.py

# The sans-I/O protocol core is held to 100% branch coverage by its unit tests.
coverage: $(STAMP)
	$(BIN)/python -m pytest tests/unit -q -p no:cacheprovider \
		--cov=massivekit.protocol --cov-branch --cov-report=term-missing --cov-fail-under=100

lint: $(STAMP)
	$(BIN)/ruff check src tests bench tools hatch_build.py
	$(BIN)/ruff format --check src tests bench tools hatch_build.py
	$(BIN)/mypy

fmt: $(STAMP)
	$(BIN)/ruff format src tests bench tools hatch_build.py
	$(BIN)/ruff check --fix src tests bench tools hatch_build.py

bench: $(STAMP)
	$(BIN)/python -m bench

mock: $(STAMP)
	$(BIN)/massivekit mock --host 127.0.0.1 --port 9000 --key demo

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
