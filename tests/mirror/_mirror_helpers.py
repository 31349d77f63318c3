"""Helpers of the mirror tests: a source hub holding everything a version carries (history, tags, cards, report
cards, runs, lineage, a hub attestation, a signature), and :func:`dump`: a store's contents as plain data, to compare two hubs."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import select

from _lineage_family import Family, build_family

from fmhub.client import LocalHub
from fmhub.evaluations import Evaluations
from fmhub.evaluations import _tables as ev
from fmhub.lineage import _tables as lt
from fmhub.runs import Runs
from fmhub.runs import _tables as rt
from fmhub.signing import Attestor, Material, create_key_pair
from fmhub.signing import _tables as st
from fmhub.store import AddFile, Store, open_store
from fmhub.store import _schema as t

#: The repos the source holds that the tests mirror (alice/clf-onnx is private).
REPOS = ["model/acme/base", "model/acme/clf", "model/acme/clf-int8", "model/alice/clf-onnx", "model/acme/student",
         "model/acme/other-clf", "dataset/acme/news"]


@dataclass
class Source:
    store: Store
    family: Family
    run_id: str
    release_key: Path  # private key that signed acme/signed
    release_pub: Path


def sqlite_store(folder: Path) -> Store:
    folder.mkdir(parents=True, exist_ok=True)
    return open_store(f"sqlite:///{folder / 'fmhub.db'}", (folder / "blobs").as_uri())


def fill_source(store: Store, tmp_path: Path) -> Source:
    family = build_family(store)
    runs = Runs(store.db)
    run = runs.start(task="text-classification", config={"lr": 5e-5, "epochs": 2}, command="fmhub train acme/base",
                     base_model="acme/base", base_commit=family.base, dataset="acme/news", dataset_commit=family.news_v1,
                     output="acme/clf", name="clf-run")
    runs.log(run.id, 10, {"loss": 0.7, "accuracy": 0.5}, epoch=0.5)
    runs.log(run.id, 20, {"loss": 0.3, "accuracy": 0.9}, epoch=1.0)
    runs.finish(run.id, "completed", summary={"eval_accuracy": 0.96}, output_commit=family.clf)
    Evaluations(store.db).record("acme/clf", family.clf_head, "eval/acme/news/test/report.json",
                                 store.read_bytes("acme/clf", "eval/acme/news/test/report.json", family.clf_head))
    card = store.get_entry("acme/clf-int8", "README.md", family.int8)[1]
    Attestor(store, tmp_path / "hub-signing.key").record(
        "optimize", "model", "acme/clf-int8", family.int8, {"README.md": card.blob_sha256},
        materials=[Material("model", "acme/clf", family.clf, "parent")], command="fmhub optimize quantize", config={})
    store.create_tag("acme/clf", "v1", revision=family.clf, message="first release")
    store.create_branch("acme/clf", "dev", revision=family.clf)
    keys = create_key_pair(tmp_path / "keys" / "release.key")
    store.create_repo("acme/signed")
    blob = store.put_bytes(json.dumps({"hidden_size": 32}).encode())
    store.commit("acme/signed", [AddFile("config.json", blob.sha256, blob.size)], title="config", author="alice")
    LocalHub(store, author="alice").sign("acme/signed", keys.private_path)
    return Source(store, family, run.id, keys.private_path, keys.public_path)


def _norm(value: object) -> object:
    """Datetimes as UTC ISO text (SQLite hands back naive UTC, PostgreSQL aware values)."""
    if isinstance(value, datetime):
        return (value if value.tzinfo else value.replace(tzinfo=UTC)).astimezone(UTC).isoformat()
    return value


def _rows(conn, query) -> list[dict]:
    return [{k: _norm(v) for k, v in row._mapping.items()} for row in conn.execute(query)]


def dump(store: Store, repos: list[str] | None = None) -> dict:
    """Everything two hubs must agree on after a mirror, as plain data (no surrogate keys, no local times)."""
    out: dict = {}
    with store.db.read() as conn:
        repo_rows = {r.pk: r for r in conn.execute(select(t.repos))}
        names = {pk: f"{r.repo_type}/{r.namespace}/{r.name}" for pk, r in repo_rows.items()}
        wanted = set(repos or names.values())
        out["repos"] = sorted((names[pk], bool(r.private), r.default_branch) for pk, r in repo_rows.items()
                              if names[pk] in wanted)
        out["commits"] = sorted((names[c["repo_pk"]], c["oid"], c["tree_id"], c["parents"], c["author"], c["title"],
                                 c["message"], c["generation"])
                                for c in _rows(conn, select(t.commits)) if names[c["repo_pk"]] in wanted)
        out["refs"] = sorted((names[r["repo_pk"]], r["kind"], r["name"], r["commit_oid"], r["message"])
                             for r in _rows(conn, select(t.refs)) if names[r["repo_pk"]] in wanted)
        trees = {c[2] for c in out["commits"]}
        out["trees"] = sorted((e["tree_id"], e["path"], e["blob_sha256"], e["size"])
                              for e in _rows(conn, select(t.tree_entries)) if e["tree_id"] in trees)
        out["runs"] = sorted(tuple(sorted((k, str(v)) for k, v in r.items())) for r in _rows(conn, select(rt.runs)))
        out["run_metrics"] = sorted((m["run_id"], m["step"], m["key"], m["value"], m["epoch"], str(m["at"]))
                                    for m in _rows(conn, select(rt.run_metrics)))
        out["evaluations"] = sorted(tuple(sorted((k, str(v)) for k, v in e.items() if k != "pk"))
                                    for e in _rows(conn, select(ev.evaluations)))
        nodes = {n["pk"]: (n["ident"], n["info"]) for n in _rows(conn, select(lt.lineage_nodes))}
        out["lineage"] = sorted((nodes[e["parent"]], nodes[e["child"]], e["relation"])
                                for e in _rows(conn, select(lt.lineage_edges)))
        out["attestations"] = sorted((a["repo_type"], a["repo_id"], a["commit"], a["kind"], a["subject_path"],
                                      a["envelope"], str(a["created_at"])) for a in _rows(conn, select(st.attestations)))
    out["cards"] = sorted((repo, sha, b"".join(store.iter_blob(sha)).decode())
                          for repo, _oid, tree_id, *_ in out["commits"]
                          for tid, path, sha, _size in out["trees"] if tid == tree_id and path == "README.md")
    return out
