"""A small family of versions with the cards the stages write, committed straight to a store.

    acme/news (dataset, 2 commits: v1 tagged, then a new one)
      └─ data ─> run r-a1b2c3d4e5f6 <─ base ── acme/base
                   └─ trained ─> acme/clf@trained ─ revision ─> acme/clf@main (adds the report card)
                                   ├─ variant ─> acme/clf-int8 (quantize, tag prod)
                                   ├─ variant ─> alice/clf-onnx (private to alice)
                                   ├─ evaluated ─> evaluation eval/acme/news/test/report.json <─ test data ─ news v1
                                   └─ teacher ─> run r-0000000000d1 ─ trained ─> acme/student (distilled)
    acme/other-clf: trained on the second news commit (not descended from v1)
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from fmhub.runs import PipelineStepRecord
from fmhub.store import AddFile, Store

RUN = "r-a1b2c3d4e5f6"
DISTILL_RUN = "r-0000000000d1"
CHECK_KEY = "c" * 64  # the step key of a serve check


@dataclass
class Family:
    news_v1: str
    news_v2: str
    base: str
    clf: str  # the commit with the trained weights and card
    clf_head: str  # the commit adding the report card
    int8: str
    onnx: str
    student: str
    other: str


def commit(store: Store, repo_id: str, files: dict[str, bytes | str], *, repo_type: str = "model",
           title: str = "update") -> str:
    ops = []
    for path, data in files.items():
        blob = store.put_bytes(data.encode() if isinstance(data, str) else data)
        ops.append(AddFile(path, blob.sha256, blob.size))
    return store.commit(repo_id, ops, repo_type=repo_type, title=title, author="alice").oid


def model_card(lineage: dict, *, extra: str = "", task: str = "text-classification") -> str:
    lines = "\n".join(f"    {k}: {v}" for k, v in lineage.items())
    return (f"---\nlicense: mit\npipeline_tag: {task}\nlibrary_name: transformers\ndatasets: [acme/news]\n"
            f"tags: [fmhub]\n{extra}fmhub:\n  lineage:\n{lines}\n---\n# model\n")


def report(model: str, model_commit: str, dataset: str, dataset_commit: str, accuracy: float) -> str:
    return json.dumps({"task": "text-classification", "metrics": {"accuracy": accuracy, "f1_macro": accuracy - 0.01},
                       "calibration": {"ece": 0.05},
                       "provenance": {"model": {"repo": model, "commit": model_commit},
                                      "dataset": {"repo": dataset, "commit": dataset_commit, "split": "test"}}})


def build_family(store: Store) -> Family:
    store.create_repo("acme/news", repo_type="dataset")
    news_v1 = commit(store, "acme/news", {"README.md": "---\nlicense: cc-by-4.0\ntask_categories: [text-classification]"
                                                       "\n---\n# news\n"}, repo_type="dataset")
    store.create_tag("acme/news", "v1", repo_type="dataset")
    news_v2 = commit(store, "acme/news", {"data/train.parquet": b"PAR1-not-really"}, repo_type="dataset")
    store.create_repo("acme/base")
    base = commit(store, "acme/base", {"README.md": "---\nlicense: apache-2.0\nlibrary_name: transformers\n---\n"})
    store.create_repo("acme/clf")
    clf = commit(store, "acme/clf", {"README.md": model_card({
        "base_model": "acme/base", "base_model_commit": base, "dataset": "acme/news", "dataset_commit": news_v1,
        "run_id": RUN})})
    clf_head = commit(store, "acme/clf", {"eval/acme/news/test/report.json": report("acme/clf", clf, "acme/news",
                                                                                    news_v1, 0.96)})
    variant = "  variant: {method: quantize, format: torch-int8}\n"
    inherited = {"dataset": "acme/news", "dataset_commit": news_v1, "run_id": RUN, "parent": "acme/clf",
                 "parent_commit": clf}
    store.create_repo("acme/clf-int8")
    int8 = commit(store, "acme/clf-int8", {
        "README.md": model_card(inherited, extra="base_model: acme/clf\n").replace("fmhub:\n", "fmhub:\n" + variant)})
    commit(store, "acme/clf-int8", {"eval/acme/news/test/report.json": report("acme/clf-int8", int8, "acme/news",
                                                                              news_v1, 0.9)})
    store.create_tag("acme/clf-int8", "prod", revision=int8)
    store.create_repo("alice/clf-onnx", private=True)
    onnx = commit(store, "alice/clf-onnx", {"README.md": model_card(inherited).replace(
        "fmhub:\n", "fmhub:\n  variant: {method: onnx, format: onnx}\n")})
    store.create_repo("acme/student")
    student = commit(store, "acme/student", {"README.md": model_card({
        "base_model": "acme/base", "base_model_commit": base, "dataset": "acme/news", "dataset_commit": news_v1,
        "run_id": DISTILL_RUN, "parent": "acme/clf", "parent_commit": clf}).replace(
        "fmhub:\n", "fmhub:\n  variant: {method: distill, format: torch}\n")})
    store.create_repo("acme/other-clf")
    other = commit(store, "acme/other-clf", {"README.md": model_card({
        "dataset": "acme/news", "dataset_commit": news_v2}, task="token-classification"),
        "eval/acme/news/test/report.json": report("acme/other-clf", "f" * 40, "acme/news", news_v2, 0.7)})
    return Family(news_v1, news_v2, base, clf, clf_head, int8, onnx, student, other)


def listed(answer: dict) -> list[str]:
    """The node ids a lineage answer lists, its roots left out."""
    roots = set(answer["roots"])
    return [n["id"] for n in answer["nodes"] if n["id"] not in roots]


def save_check(store: Store, output: str, *, agreement: float = 1.0, kind: str = "serve-check",
               key: str = CHECK_KEY) -> PipelineStepRecord:
    """alice's serve check (or another step ``kind``) of ``output``, saved through the embedded hub."""
    from fmhub.client._local import LocalHub

    with LocalHub(store, author="alice") as hub:
        return hub.save_pipeline_step(PipelineStepRecord(key, "demo", "check", kind, output,
                                                         {"agreement": agreement, "rows": 32.0}, "32 rows"))
