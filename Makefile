# Thin aliases over nox. `make test` and `make demo` bootstrap nox into .venv-tools on a fresh machine.
PYTHON ?= python3
TOOLS := .venv-tools
NOX := $(TOOLS)/bin/nox
NOXFLAGS ?=

.PHONY: help test test-slow demo bench lint format clean

help:
	@echo "make demo       every method's main job on small embedded data (outputs in demo_outputs/)"
	@echo "make test       all default nox sessions: lint, shared, every package's tests, repo contracts"
	@echo "make test-slow  the slow tests of every package"
	@echo "make bench      every package's benchmark, collected into BENCHMARKS.md"
	@echo "make lint       ruff check and format check"
	@echo "make format     ruff format and autofix"
	@echo "make clean      remove virtual environments and generated outputs"

$(NOX):
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install -q "nox>=2024.10" "ruff>=0.8"

test: $(NOX)
	$(NOX) $(NOXFLAGS)

test-slow: $(NOX)
	$(NOX) $(NOXFLAGS) -s slow

demo: $(NOX)
	$(NOX) $(NOXFLAGS) -s demo

bench: $(NOX)
	$(NOX) $(NOXFLAGS) -s bench bench_table

lint: $(NOX)
	$(NOX) $(NOXFLAGS) -s lint

format: $(NOX)
	$(TOOLS)/bin/ruff format . && $(TOOLS)/bin/ruff check --fix .

clean:
	rm -rf .nox $(TOOLS) demo_outputs bench_results reports dist build .pytest_cache .ruff_cache
