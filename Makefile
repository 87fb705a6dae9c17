# trailpipe — `make help` lists the targets. Everything installs itself into .venv on first use.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PYTEST_ARGS ?=

.DEFAULT_GOAL := help
.PHONY: help install kafka-libs run test test-cleanup test-unit bench lint typecheck up down clean

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q -U pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $(STAMP)

install: $(STAMP) ## Create .venv and install trailpipe with its pinned dependencies

kafka-libs: $(STAMP) ## Resolve the Apache Kafka jars from Maven Central (cached in var/kafka)
	$(BIN)/python -c "from pipeline.dev.libs import ensure_kafka_libs, find_repo_root; print(*ensure_kafka_libs(find_repo_root()))"

run: kafka-libs ## The main job: local cluster, generator, archiver to var/lake, live status (Ctrl-C)
	$(BIN)/trailpipe run $(ARGS)

test: kafka-libs ## Run the whole test suite against a real local broker and S3 endpoint
	$(BIN)/pytest $(PYTEST_ARGS); rc=$$?; $(MAKE) --no-print-directory test-cleanup; exit $$rc

test-cleanup: ## Stop test clusters whose pytest session is gone (crashed or killed)
	@for d in var/test-clusters/pytest-*; do \
	  [ -d "$$d" ] || continue; pid=$${d##*-}; kill -0 "$$pid" 2>/dev/null && continue; \
	  $(BIN)/trailpipe dev down --purge --state-dir "$$d" >/dev/null 2>&1; rm -rf "$$d"; \
	done

test-unit: $(STAMP) ## Unit tests only (no I/O)
	$(BIN)/pytest tests/unit $(PYTEST_ARGS)

bench: kafka-libs ## Benchmarks; results merged into bench/results.json
	$(BIN)/python -m bench $(SCENARIO)

lint: $(STAMP) ## ruff
	$(BIN)/ruff check .

typecheck: $(STAMP) ## mypy (strict on pipeline/)
	$(BIN)/mypy

up: kafka-libs ## Start the local dev cluster and S3 endpoint (var/dev)
	$(BIN)/trailpipe dev up --s3 $(ARGS)

down: ## Stop what `make up` started
	@if [ -x $(BIN)/trailpipe ]; then $(BIN)/trailpipe dev down; fi

clean: down ## Remove .venv and var/
	rm -rf $(VENV) var
