#!/usr/bin/env bash
# A walk through the versioned store on the embedded default (SQLite + a local blob folder):
# create a repo, commit files, branch, tag, download a revision, check integrity; then serve it over
# HTTP to the unmodified huggingface_hub client with a user, a token and a private repo.
# Run it with `make tour`; it starts from a fresh store in .fmhub-tour/ every time.
set -euo pipefail

export FMHUB_HOME="${FMHUB_TOUR_HOME:-$PWD/.fmhub-tour}"
export FMHUB_USER="${FMHUB_USER:-demo}"
unset FMHUB_DB_URL FMHUB_BLOB_URL
rm -rf "$FMHUB_HOME"
work="$FMHUB_HOME/work"
mkdir -p "$work"

step() { printf '\n\033[1m== %s\033[0m\n$ %s\n' "$1" "${*:2}"; "${@:2}"; }

# A small model folder in real formats: config, tokenizer vocab, card, and a safetensors file
# (written by hand: 8-byte little-endian header length, JSON header, raw float32 data).
python - "$work/tiny-bert" <<'PY'
import json, os, struct, sys
from pathlib import Path
root = Path(sys.argv[1]); root.mkdir(parents=True)
(root / "config.json").write_text(json.dumps({"model_type": "bert", "hidden_size": 32, "num_hidden_layers": 2,
                                              "num_attention_heads": 2, "intermediate_size": 64,
                                              "vocab_size": 1000}, indent=2) + "\n")
(root / "vocab.txt").write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] +
                                          [f"tok{i}" for i in range(995)]) + "\n")
(root / "README.md").write_text("---\nlicense: apache-2.0\n---\n# tiny-bert\nA 2-layer BERT for demos.\n")
shape = [1000, 4096]  # 16 MB of float32: large enough to show progress bars
header = json.dumps({"embeddings.weight": {"dtype": "F32", "shape": shape,
                                           "data_offsets": [0, shape[0] * shape[1] * 4]}}).encode()
header += b" " * (-len(header) % 8)
with open(root / "model.safetensors", "wb") as f:
    f.write(struct.pack("<Q", len(header)) + header)
    f.write(os.urandom(shape[0] * shape[1] * 4))
PY

step "Create a model repository" fmhub repo create acme/tiny-bert
step "Commit a folder in one commit" fmhub upload acme/tiny-bert "$work/tiny-bert" -m "Add tiny BERT"
step "List the files of main" fmhub ls acme/tiny-bert
step "Tag this version (tags never move)" fmhub tag create acme/tiny-bert v1.0 -m "first release"
step "Branch off for an experiment" fmhub branch create acme/tiny-bert wider

sed -i 's/"hidden_size": 32/"hidden_size": 64/' "$work/tiny-bert/config.json"
step "Commit a change to the branch only" \
    fmhub upload acme/tiny-bert "$work/tiny-bert/config.json" --revision wider -m "Try hidden size 64"
step "History of the branch" fmhub log acme/tiny-bert --revision wider
step "Uploading identical content is a no-op (content-addressed, deduplicated)" \
    fmhub upload acme/tiny-bert "$work/tiny-bert/model.safetensors" --revision wider

step "Download the tagged revision" fmhub download acme/tiny-bert --revision v1.0 --local-dir "$work/v1.0"
grep -q '"hidden_size": 32' "$work/v1.0/config.json"
cmp "$work/v1.0/model.safetensors" "$work/tiny-bert/model.safetensors"
echo "v1.0 checkout matches what was committed (hidden_size 32, identical weights)"

step "Only the config of the branch, into the snapshot cache" \
    fmhub download acme/tiny-bert --revision wider --include '*.json'

step "Repository summary" fmhub repo info acme/tiny-bert
step "Re-hash every blob and check every reference" fmhub fsck
step "What garbage collection would free" fmhub gc --dry-run

# -- The same store over HTTP, to the unmodified Hugging Face client ---------------------------------
step "A user and a write token (printed once, stored hashed)" fmhub user create alice
token=$(fmhub token create --user alice --name demo --role write 2>/dev/null)
port=$(python -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
FMHUB_ADMIN_TOKEN="demo-admin-token-$(python -c 'import secrets; print(secrets.token_hex(16))')" \
    fmhub server --port "$port" --log-level warning 2>"$work/server.log" &
server=$!
trap 'kill $server 2>/dev/null || true' EXIT
python - "$port" <<'PY'
import sys, time, urllib.request
for _ in range(200):
    try:
        urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[1]}/readyz"); break
    except OSError:
        time.sleep(0.05)
PY
printf '\n\033[1m== huggingface_hub against fmhub (HF_ENDPOINT=http://127.0.0.1:%s)\033[0m\n' "$port"
HF_ENDPOINT="http://127.0.0.1:$port" HF_TOKEN="$token" HF_HUB_DISABLE_XET=1 HF_HUB_CACHE="$work/hf-cache" \
python - "$work/tiny-bert" <<'PY'
import sys
from huggingface_hub import HfApi, hf_hub_download
from huggingface_hub.errors import RepositoryNotFoundError
api = HfApi()
print("whoami:", api.whoami()["name"])
api.create_repo("alice/tiny-bert", private=True)
commit = api.upload_folder(folder_path=sys.argv[1], repo_id="alice/tiny-bert", commit_message="Upload via HF")
print("uploaded:", commit.oid[:12], "(the 16 MB weights go through Git LFS; already stored in acme/tiny-bert, which alice can read, so no bytes were sent)")
info = api.model_info("alice/tiny-bert")
print("private:", info.private, "| license from the card:", info.card_data["license"],
      "| files:", sorted(s.rfilename for s in info.siblings))
print("downloaded:", hf_hub_download("alice/tiny-bert", "config.json"))
try:
    HfApi(token=False).model_info("alice/tiny-bert")
except RepositoryNotFoundError:
    print("anonymous: alice/tiny-bert is 'not found' (private repos answer like missing ones)")
PY
kill $server; wait $server 2>/dev/null || true
step "Every write is in the audit log" fmhub audit --limit 5

printf "\nThe tour's store is in %s (delete it freely).\n" "$FMHUB_HOME"
