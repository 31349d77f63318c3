"""The store the web tests (and docs/screenshots.py) browse: the tiny example pipeline, plus what a hub holds.

- the tiny pipeline's output (dataset, pretrained BERT, classifier with its run and report card, ONNX int8
  variant published as ``prod``);
- ``tiny/topics-noisy``: the same texts with every fifth label flipped, and the classifier's report card on
  it, so the error browser has real mistakes to list;
- ``acme/secret-model``: a private model of the organization ``acme`` (alice is its admin), and a run
  that made it (its id in ``secret-run.txt``);
- ``tiny/xss-card``: a public model whose card carries script payloads (they must run nothing);
- accounts: ``admin`` (site administrator, :data:`ADMIN_TOKEN`), ``alice`` (:data:`ALICE_TOKEN`), ``bob``.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path

from fmhub.constants import settings

EXAMPLE = Path(__file__).parents[2] / "examples" / "tiny"
ADMIN_TOKEN = "fmhub_web-test-admin-token-0123456789"
ALICE_TOKEN = "fmhub_web-test-alice-token-0123456789"
ALICE_READ_TOKEN = "fmhub_web-test-alice-read-token-01234"
BOB_TOKEN = "fmhub_web-test-bob-token-0123456789abc"

#: A card no browser may execute anything from (each payload would show a dialog, log or fetch).
XSS_CARD = """---
license: mit
tags: [xss]
---
# A card with payloads

<script>alert('script-tag'); console.error('xss-script-tag'); fetch('/xss-script-tag')</script>

<img src="x" onerror="alert('onerror'); console.error('xss-onerror'); fetch('/xss-onerror')">

<a href="javascript:alert('javascript-link')">a javascript: link</a> and [another](javascript:alert('md-link'))

<svg onload="alert('svg-onload')"><script>alert('svg-script')</script></svg>

<iframe src="javascript:alert('iframe')"></iframe>

<style>body { background: red; }</style>

<p style="background:url(/xss-style)" onclick="alert('onclick')">styled text</p>

<object data="javascript:alert('object')"></object><embed src="javascript:alert('embed')">

<form action="/xss-form"><button formaction="javascript:alert('formaction')">press</button></form>

<details open ontoggle="alert('ontoggle')"><summary>details</summary>x</details>

Plain text after the payloads.
"""


def build(home: Path) -> None:
    """Build the whole store in ``home`` (about 20 s on 2 cores)."""
    from fmhub.accounts import Accounts
    from fmhub.cli import main
    from fmhub.client import Hub
    from fmhub.data._import import ImportOptions, import_dataset
    from fmhub.evaluate import EvalConfig, evaluate

    saved = {k: os.environ.get(k) for k in ("FMHUB_HOME", "FMHUB_USER", "FMHUB_DB_URL", "FMHUB_BLOB_URL",
                                            "FMHUB_ENDPOINT", "FMHUB_TOKEN")}
    os.environ.update({"FMHUB_HOME": str(home), "FMHUB_USER": "tiny"})
    for key in ("FMHUB_DB_URL", "FMHUB_BLOB_URL", "FMHUB_ENDPOINT", "FMHUB_TOKEN"):
        os.environ.pop(key, None)
    settings.cache_clear()
    try:
        assert main(["run", str(EXAMPLE / "pipeline.yaml")]) == 0
        with open(EXAMPLE / "topics.csv", newline="") as source:
            rows = list(csv.DictReader(source))
        flip = {"sport": "tech", "tech": "sport"}
        noisy = home / "topics-noisy.csv"
        with open(noisy, "w", newline="") as out:
            writer = csv.DictWriter(out, fieldnames=["text", "label"])
            writer.writeheader()
            for i, row in enumerate(rows):
                writer.writerow({"text": row["text"], "label": flip[row["label"]] if i % 5 == 0 else row["label"]})
        with Hub.open() as hub:
            import_dataset(hub, noisy, "tiny/topics-noisy", ImportOptions(split="train=0.5,test=0.5", seed=0))
            evaluate(EvalConfig(model="tiny/topics-bert", data="tiny/topics-noisy", split="test",
                                skip=("robustness", "baseline", "efficiency"), threads=1), hub, push=True,
                     output_dir=home / "evals-noisy")
            hub.create_repo("tiny/xss-card")
            (home / "xss").mkdir()
            (home / "xss" / "README.md").write_text(XSS_CARD)
            hub.upload(home / "xss", "tiny/xss-card")
        from fmhub.store import open_store

        with open_store() as store:
            accounts = Accounts(store.db)
            accounts.create_user("admin", admin=True)
            accounts.create_token("admin", name="bootstrap", role="write", value=ADMIN_TOKEN)
            for user in ("alice", "bob"):
                accounts.create_user(user)
            accounts.create_org("acme", owner="alice")
            accounts.create_token("alice", name="laptop", role="write", value=ALICE_TOKEN)
            accounts.create_token("alice", name="reader", role="read", value=ALICE_READ_TOKEN)
            accounts.create_token("bob", name="laptop", role="write", value=BOB_TOKEN)
            store.create_repo("acme/secret-model", private=True, author="alice")
            from fmhub.store import AddFile

            blob = store.put_bytes(b"---\nlicense: mit\nbase_model: tiny/topics-bert\n---\n# Secret model\n\n"
                                   b"Only acme sees this.\n")  # made from a public model: lineage must hide it
            store.commit("acme/secret-model", [AddFile("README.md", blob.sha256, blob.size)], title="Add card",
                         author="alice")
            from fmhub.runs import Runs

            runs = Runs(store.db)  # a run whose output is private: shown only to those who may see the model
            run = runs.start(task="text-classification", config={"learning_rate": 0.1}, command="fmhub train secret",
                             base_model=None, base_commit=None, dataset=None, dataset_commit=None,
                             output="acme/secret-model", name="secret-run")
            runs.log(run.id, step=1, metrics={"loss": 1.0})
            runs.finish(run.id, "completed", summary={"eval_accuracy": 0.5})
            (home / "secret-run.txt").write_text(run.id)
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        settings.cache_clear()
