#!/usr/bin/env bash
# The digits example end to end on the embedded store in .fmhub-digits/ (kept: a second run is all cached):
# write the images, then run the pipeline.
set -euo pipefail
cd "$(dirname "$0")/../.."
export FMHUB_HOME="${FMHUB_DIGITS_HOME:-$PWD/.fmhub-digits}"
unset FMHUB_DB_URL FMHUB_BLOB_URL FMHUB_ENDPOINT FMHUB_TOKEN
[ -d examples/digits/images ] || python examples/digits/make_digits.py
fmhub run examples/digits/pipeline.yaml
