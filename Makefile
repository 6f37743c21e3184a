# Thin wrappers over the commands .ci/run uses. `make help` lists them.
.DEFAULT_GOAL := help
VENV := .venv
BIN := $(VENV)/bin

$(BIN)/questline: pyproject.toml
	python3 -m venv $(VENV) && $(BIN)/pip install -q -e '.[test]'
	@touch $@

.PHONY: help install serve test lint check bench
help: ## Show this help
	@grep -E '^[a-z]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-8s %s\n", $$1, $$2}'
install: $(BIN)/questline ## Create .venv and install Questline with its test tools
serve: install ## Run the server on the embedded default with demo data
	$(BIN)/questline demo
test: install ## Run the whole test suite
	$(BIN)/pytest
lint: install ## ruff, mypy --strict and the import contracts
	$(BIN)/ruff check . && $(BIN)/ruff format --check . && $(BIN)/mypy && $(BIN)/lint-imports
check: lint test ## Everything CI runs
bench: install ## Benchmarks (need the real PostgreSQL and Redis)
	$(BIN)/python bench/ingest.py
	$(BIN)/python bench/leaderboards.py
