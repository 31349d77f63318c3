"""``fmhub optimize auto``: candidates built from chains of methods, measured, the front kept, the pick committed with
its report card and the search; built steps reused; the budget respected; chains load and serve with their lineage."""

from __future__ import annotations

import dataclasses
import json

import httpx
import pytest

import fmhub
from fmhub.cards import parse_card
from fmhub.cli import main
from fmhub.client import Hub
from fmhub.errors import InvalidInputError
from fmhub.optimize._auto import NoPickError, _trained_rate, auto_optimize, pareto_front, pick, resolution_note
from fmhub.optimize._variant import open_parent
from fmhub.serve import ServeConfig, app_for, prepare
from fmhub.serve._live import running

# A short search: every kind of chain (export, int8, a student then int8, heads pruned then int8) in seconds.
QUICK = dict(skip=["static-int8", "int8-per-tensor", "torch-int8", "prune-neurons"], max_lengths=[32, 16],
             distill_epochs=1, prune_finetune_steps=2, latency_rows=4, threads=1, eval_skip=["robustness", "slices", "baseline"])


def _row(name: str, accuracy: float, latency: float, throughput: float = 1.0) -> dict:
    return {"name": name, "accuracy": accuracy, "latency_ms": latency, "throughput": throughput, "size_mb": 1.0}


def test_front_and_pick_within_the_drop() -> None:
    rows = [_row("slow-best", 0.95, 10, 10), _row("fast-bad", 0.90, 2, 50), _row("mid", 0.947, 4, 30),
            _row("dominated", 0.94, 5, 20)]
    assert [r["name"] for r in pareto_front(rows, "latency")] == ["slow-best", "fast-bad", "mid"]
    assert pick(rows, 0.95, 0.5, "latency")["name"] == "mid"  # 0.3 points lost: within 0.5
    assert pick(rows, 0.95, 0.2, "latency")["name"] == "slow-best"
    assert pick(rows, 0.95, 10, "latency")["name"] == "fast-bad"
    assert pick(rows, 0.99, 0.5, "latency") is None


def test_auto_search_commits_the_pick_with_its_card_and_search(classifier: str, tiny_data: str) -> None:
    seen: list[dict] = []
    outcome = auto_optimize(classifier, "acme/clf-fast", max_drop=100, on_candidate=seen.append, **QUICK)
    search = outcome.search
    names = {r["name"] for r in search["candidates"]}
    assert {"onnx-fp32", "int8", "distill-l1", "distill-l1+int8", "prune-heads-0.5+int8", "int8@16"} <= names
    assert all(r["status"] == "built" for r in search["candidates"])
    assert len(seen) == len(search["candidates"]) + len(search["unmeasured"])  # progress per candidate
    for row in search["candidates"]:
        assert 0 <= row["accuracy"] <= 1 and row["latency_ms"] > 0 and row["throughput"] > 0 and row["size_mb"] > 0
        # the accuracy moves only through the rows it gets wrong that the parent gets right, and the reverse
        moved = (row["won"] - row["lost"]) / search["rows"]
        assert row["accuracy"] - search["parent"]["accuracy"] == pytest.approx(moved), row
        assert "predicted" not in row
    chosen = search["pick"]
    assert chosen["picked"] and chosen["front"]
    fastest = min(r["latency_ms"] for r in search["candidates"])
    assert chosen["latency_ms"] == fastest  # any drop allowed: the fastest wins

    # the pick: its weights, a card naming the search and its length, the search files, a test-split report card
    with Hub.open() as hub:
        folder = hub.download("acme/clf-fast", revision=outcome.commit)
        files = {e.path for e in hub.list_files("acme/clf-fast", outcome.card_commit)}
    card = parse_card((folder / "README.md").read_text()).metadata
    variant, lineage = card["fmhub"]["variant"], card["fmhub"]["lineage"]
    assert variant["auto"]["candidate"] == chosen["ref"] and variant["max_length"] == chosen["max_length"]
    assert lineage["chain"][0]["repo"] == classifier
    assert {"auto/search.json", "auto/search.png", "auto/search.svg"} <= files
    saved = json.loads((folder / "auto" / "search.json").read_text())
    assert saved["pick"]["name"] == chosen["name"] and saved["front"] == search["front"]
    assert outcome.report["provenance"]["dataset"]["split"] == "test" and outcome.report["parent"]["repo"] == classifier
    assert outcome.report["max_length"] == chosen["max_length"]  # evaluated at the length it was picked at
    assert fmhub.load("acme/clf-fast").variant["auto"]["name"] == chosen["name"]

    # chains keep their whole lineage, and load
    student_int8 = next(r for r in search["candidates"] if r["name"] == "distill-l1+int8")
    repo, commit = student_int8["ref"].split("@")
    with Hub.open() as hub:
        chained = parse_card(hub.read_bytes(repo, "README.md", revision=commit).decode()).metadata["fmhub"]["lineage"]
    assert [c["repo"] for c in chained["chain"]] == [classifier, "acme/clf-fast-auto-distill-l1"]
    assert chained["chain"][1]["method"] == "distill" and chained["parent"] == chained["chain"][1]["repo"]
    loaded = fmhub.load(student_int8["ref"])
    assert loaded.format == "onnx" and loaded.config.num_hidden_layers == 1

    # the pick serves at the length it was picked at, with its lineage
    config = ServeConfig(model="acme/clf-fast", threads=1)
    with running(app_for(dataclasses.replace(config, model=prepare(config)))) as url:
        answer = httpx.post(f"{url}/v1/classify", json={"inputs": "goal match team"}, timeout=30)
        longer = httpx.post(f"{url}/v1/classify", json={"inputs": " ".join(["goal"] * 40)}, timeout=30)
        info = httpx.get(f"{url}/v1/model", timeout=30).json()
    assert answer.status_code == 200 and answer.json()[0][0]["label"] in ("sport", "tech")
    assert longer.status_code == 200  # beyond the picked length, within the positions: read cut, not refused
    assert info["max_length"] == chosen["max_length"] and info["card"]["lineage"]["chain"][0]["repo"] == classifier

    # a second search (another budget) reuses every step built: it only measures
    again = auto_optimize(classifier, "acme/clf-fast-strict", max_drop=0.0, **QUICK)
    assert all(r["status"] == "reused" for r in again.search["candidates"])
    assert again.search["pick"]["accuracy"] >= search["parent"]["accuracy"] - 1e-9
    with Hub.open() as hub:  # a budget finer than one validation row: the card says what that means
        strict = hub.read_bytes("acme/clf-fast-strict", "README.md", revision=again.commit).decode()
    assert f"Note: the validation split has {search['rows']} rows" in strict and "| lost / won |" in strict


def test_budget_skips_what_does_not_fit(classifier: str, tiny_data: str) -> None:
    with pytest.raises(NoPickError) as caught:
        auto_optimize(classifier, "acme/clf-none", budget_minutes=0.001, threads=1, latency_rows=2)
    summary = caught.value.summary
    assert summary["candidates"] == [] and summary["unmeasured"]
    assert all(r["status"].startswith("skipped: --budget-minutes") for r in summary["unmeasured"])
    # the error says the budget pre-empted the search, from which figures, and how much would do
    message = str(caught.value)
    assert message.startswith(f"--budget-minutes 0.001 left no room for any of the {len(summary['unmeasured'])} ")
    assert f"took {summary['budget']['parent_seconds']:.0f} s" in message
    assert "allow at least" in caught.value.hint
    with Hub.open() as hub:
        assert not any(r.repo_id.startswith("acme/clf-none") for r in hub.list_repos())  # nothing built or committed


def test_a_distillations_time_is_guessed_from_the_parents_own_fine_tune(classifier: str) -> None:
    with Hub.open() as hub:
        parent = open_parent(hub, classifier)
        run = hub.get_run(parent.lineage["run_id"])
        per_row, fixed = _trained_rate(hub, parent)
        assert per_row == pytest.approx(run.summary["seconds_per_step"] / run.config["batch_size"])
        assert per_row > 0 and fixed == pytest.approx(run.summary["fixed_seconds"])
        student = open_parent(hub, classifier)  # a model whose run is unknown (an import, a pruned variant)
        student.metadata = {"fmhub": {"lineage": {"run_id": "r-000000000000"}}}
        assert _trained_rate(hub, student) is None  # then the inference rate is the guess


def test_the_split_size_is_noted_when_one_row_is_half_the_budget() -> None:
    summary = {"split": "validation", "max_drop": 0.5}
    assert resolution_note({**summary, "rows": 2000}) is None  # one row: 0.05 points
    note = resolution_note({**summary, "rows": 223})
    assert note is not None and "223 rows" in note and "0.45 accuracy points" in note


def test_bad_options_are_input_errors() -> None:
    classifier = "acme/clf"  # options are checked before the hub is asked anything
    with pytest.raises(InvalidInputError, match="--objective"):
        auto_optimize(classifier, "acme/x", objective="size")
    with pytest.raises(InvalidInputError, match="--skip"):
        auto_optimize(classifier, "acme/x", skip=["quantum"])
    assert main(["optimize", "auto", classifier, "--output", "acme/x", "--max-drop", "-1"]) == 2
    assert main(["optimize", "auto", classifier, "--output", "acme/x", "--objective", "size"]) == 2


def test_cli_shows_the_search(classifier: str, tiny_data: str, capsys: pytest.CaptureFixture[str],
                              monkeypatch: pytest.MonkeyPatch) -> None:
    from fmhub.cli._common import console

    monkeypatch.setattr(console, "width", 160)  # a terminal wide enough for the whole table
    skip = "onnx,int8-per-tensor,static-int8,torch-int8,distill,prune-heads,prune-neurons"
    assert main(["optimize", "auto", classifier, "--output", "acme/clf-cli", "--max-drop", "100", "--skip", skip,
                 "--max-lengths", "32,16", "--threads", "1", "--latency-rows", "2", "--eval-skip",
                 "robustness,slices,baseline"]) == 0
    out = capsys.readouterr()
    assert "int8@16" in out.out and "★ pick" in out.out and "report card committed" in out.out
    assert "lost/won" in out.out and "; lost " in out.out + out.err
    assert "int8: accuracy" in out.err or "int8: accuracy" in out.out  # the line of each candidate as it is measured
