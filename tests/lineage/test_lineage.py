"""The lineage graph: edges recorded in the commit's transaction from the cards stages write, walked both ways,
impact at any depth, hidden nodes, the backfill, and the ``fmhub lineage`` commands."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import func, select

from _lineage_family import DISTILL_RUN, RUN, Family, build_family, commit
from fmhub.errors import InvalidInputError, RepoNotFoundError
from fmhub.lineage import Lineage, card_edges, describe
from fmhub.lineage import _tables as lt
from fmhub.store import Store


@pytest.fixture
def family(metadata_store: Store) -> Family:  # SQLite and PostgreSQL
    return build_family(metadata_store)


@pytest.fixture
def store(metadata_store: Store) -> Store:
    return metadata_store


@pytest.fixture
def local_family(local_store: Store) -> Family:
    return build_family(local_store)


def _edges(answer: dict) -> set[tuple[str, str, str]]:
    return {(e["from"], e["to"], e["relation"]) for e in answer["edges"]}


def test_a_trained_model_comes_from_its_run_its_data_and_its_base(store: Store, family: Family) -> None:
    answer = describe(store, "model", "acme/clf", family.clf, up=True, down=False)
    assert answer["roots"] == [f"model:acme/clf@{family.clf}"]
    assert _edges(answer) == {
        (f"run:{RUN}", f"model:acme/clf@{family.clf}", "trained"),
        (f"dataset:acme/news@{family.news_v1}", f"run:{RUN}", "data"),
        (f"model:acme/base@{family.base}", f"run:{RUN}", "base"),
    }
    depths = {n["id"]: n["depth"] for n in answer["nodes"]}
    assert depths[f"run:{RUN}"] == -1 and depths[f"dataset:acme/news@{family.news_v1}"] == -2


def test_down_from_a_model_reaches_variants_evaluations_students_and_later_commits(store: Store,
                                                                                   family: Family) -> None:
    answer = describe(store, "model", "acme/clf", family.clf, up=False, down=True)
    me = f"model:acme/clf@{family.clf}"
    report = "eval/acme/news/test/report.json"
    assert {
        (me, f"model:acme/clf-int8@{family.int8}", "variant"),
        (me, f"model:alice/clf-onnx@{family.onnx}", "variant"),
        (me, f"model:acme/clf@{family.clf_head}", "revision"),
        (me, f"evaluation:acme/clf@{family.clf_head}:{report}", "evaluated"),
        (me, f"run:{DISTILL_RUN}", "teacher"),
        (f"run:{DISTILL_RUN}", f"model:acme/student@{family.student}", "trained"),
    } <= _edges(answer)
    nodes = {n["id"]: n for n in answer["nodes"]}
    int8 = nodes[f"model:acme/clf-int8@{family.int8}"]
    assert int8["info"] == {"method": "quantize", "format": "torch-int8"}
    assert int8["refs"] == [{"kind": "tag", "name": "prod"}]  # the published ref at that commit
    evaluation = nodes[f"evaluation:acme/clf@{family.clf_head}:{report}"]
    assert evaluation["info"]["metrics"]["accuracy"] == 0.96 and evaluation["info"]["split"] == "test"


def test_a_variants_inherited_lineage_makes_no_second_training_edge(store: Store, family: Family) -> None:
    up = describe(store, "model", "acme/clf-int8", family.int8, up=True, down=False, depth=1)
    assert _edges(up) == {(f"model:acme/clf@{family.clf}", f"model:acme/clf-int8@{family.int8}", "variant")}


def test_depth_bounds_the_walk(store: Store, family: Family) -> None:
    one = describe(store, "dataset", "acme/news", "v1", up=False, depth=1)
    assert {n["depth"] for n in one["nodes"]} == {0, 1}
    assert f"model:acme/clf@{family.clf}" not in {n["id"] for n in one["nodes"]}
    three = describe(store, "dataset", "acme/news", "v1", up=False, depth=3)
    assert f"model:acme/clf-int8@{family.int8}" in {n["id"] for n in three["nodes"]}


def test_impact_lists_everything_built_from_a_dataset_version_and_nothing_else(store: Store, family: Family) -> None:
    impact = describe(store, "dataset", "acme/news", family.news_v1, impact=True)
    ids = {n["id"] for n in impact["nodes"]}
    assert {f"model:acme/clf@{family.clf}", f"model:acme/clf@{family.clf_head}", f"model:acme/clf-int8@{family.int8}",
            f"model:alice/clf-onnx@{family.onnx}", f"model:acme/student@{family.student}", f"run:{RUN}"} <= ids
    assert not any("other-clf" in i for i in ids)  # trained on the second commit
    assert not any("acme/base" in i for i in ids)  # an input, not a descendant
    every = describe(store, "dataset", "acme/news", None, impact=True)  # every version of the dataset
    assert f"model:acme/other-clf@{family.other}" in {n["id"] for n in every["nodes"]}


def test_a_revision_without_recorded_lineage_starts_from_its_newest_recorded_ancestor(store: Store,
                                                                                      family: Family) -> None:
    later = commit(store, "acme/clf", {"notes.txt": "more"})
    answer = describe(store, "model", "acme/clf", later, up=True, down=False, depth=1)
    assert answer["commit"] == later  # the version asked about...
    assert answer["roots"] == [f"model:acme/clf@{later}"]  # ...is in the graph: a revision of the previous head


def test_nodes_the_reader_may_not_read_are_hidden_never_named(local_store: Store, local_family: Family) -> None:
    answer = describe(local_store, "model", "acme/clf", local_family.clf, may_read=lambda n: not n.private)
    hidden = [n for n in answer["nodes"] if n.get("hidden")]
    assert len(hidden) == 1 and set(hidden[0]) == {"id", "kind", "hidden", "depth"}
    assert "alice/clf-onnx" not in json.dumps(answer) and local_family.onnx not in json.dumps(answer)
    assert (f"model:acme/clf@{local_family.clf}", hidden[0]["id"], "variant") in _edges(answer)


def test_a_run_is_hidden_when_its_output_is(local_store: Store, local_family: Family) -> None:
    from fmhub.server._lineage import may_read

    local_store.update_repo("acme/clf", private=True)
    answer = describe(local_store, "dataset", "acme/news", "v1", up=False, depth=1, may_read=may_read(None))
    assert f"run:{RUN}" not in json.dumps(answer)
    assert [n["kind"] for n in answer["nodes"]].count("hidden") == 2  # the run and the private model's evaluation


def test_deleted_repos_stay_in_the_graph_marked_as_gone(local_store: Store, local_family: Family) -> None:
    local_store.delete_repo("acme/clf-int8")
    answer = describe(local_store, "model", "acme/clf", local_family.clf, up=False, depth=1)
    gone = next(n for n in answer["nodes"] if n["id"] == f"model:acme/clf-int8@{local_family.int8}")
    assert gone["exists"] is False and gone["refs"] == []


def test_bad_cards_record_nothing_and_never_fail_the_commit(local_store: Store) -> None:
    local_store.create_repo("acme/broken")
    for card in ("---\nfmhub: [1, 2]\n---\n", "---\nfmhub:\n  lineage: {dataset: '../../x', run_id: 'r-zz'}\n---\n",
                 "---\n: : :\n---\n", "no front matter"):
        commit(local_store, "acme/broken", {"README.md": card})
    commit(local_store, "acme/broken", {"eval/acme/news/test/report.json": "{not json"})
    with local_store.db.read() as conn:
        assert conn.execute(select(func.count()).select_from(lt.lineage_edges)).scalar() == 0


def test_card_edges_follow_the_stages_conventions() -> None:
    edges = card_edges("model", "acme/m", "c" * 40, {"base_model": "bert-base/uncased"})
    assert [(e.parent.ident, e.relation) for e in edges] == [("model:bert-base/uncased@:", "base")]
    dataset = card_edges("dataset", "acme/d2", "d" * 40, {"fmhub": {"lineage": {"parent": "acme/d1",
                                                                                "parent_commit": "e" * 40}}})
    assert [(e.parent.ident, e.child.ident, e.relation) for e in dataset] == [
        (f"dataset:acme/d1@{'e' * 40}:", f"dataset:acme/d2@{'d' * 40}:", "derived")]


def test_reindex_rebuilds_the_same_graph(local_store: Store, local_family: Family) -> None:
    from fmhub.indexing import reindex

    before = describe(local_store, "dataset", "acme/news", None, impact=True)
    with local_store.db.write() as conn:
        conn.execute(lt.lineage_edges.delete())
        conn.execute(lt.lineage_nodes.delete())
    assert describe(local_store, "dataset", "acme/news", None, impact=True)["nodes"] == []
    assert reindex(local_store) == 7
    after = describe(local_store, "dataset", "acme/news", None, impact=True)
    assert sorted(n["id"] for n in after["nodes"]) == sorted(n["id"] for n in before["nodes"])


def test_bad_queries_are_clear_errors(local_store: Store, local_family: Family) -> None:
    with pytest.raises(InvalidInputError, match="--depth"):
        describe(local_store, "model", "acme/clf", depth=0)
    with pytest.raises(RepoNotFoundError):
        describe(local_store, "model", "acme/nothing")
    assert Lineage(local_store.db).graph([]).nodes == {}


def _cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    from fmhub.cli import main

    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture
def cli_family(tmp_path, monkeypatch: pytest.MonkeyPatch) -> Family:
    from fmhub.constants import settings
    from fmhub.store import open_store

    monkeypatch.setenv("FMHUB_HOME", str(tmp_path / "home"))
    settings.cache_clear()
    with open_store() as store:
        made = build_family(store)
    yield made
    settings.cache_clear()


def test_the_lineage_commands(cli_family: Family, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _cli(capsys, "lineage", "acme/news@v1", "--json")
    assert code == 0 and json.loads(out)["direction"] == "both"
    code, out, _ = _cli(capsys, "lineage", "acme/clf-int8", "--up")  # a model found without --repo-type
    assert code == 0 and "variant" in out and "acme/clf@" in out and "made from" in out
    code, out, _ = _cli(capsys, "lineage", "show", f"acme/clf@{cli_family.clf}", "--dot", "--down", "--depth", "1")
    assert code == 0 and out.startswith("digraph lineage {") and '[label="variant"]' in out
    code, out, _ = _cli(capsys, "lineage", "impact", "acme/news@v1")
    assert code == 0 and "acme/clf-int8@" in out and "tag prod" in out and "other-clf" not in out
    code, _, err = _cli(capsys, "lineage", "acme/nothing")
    assert code == 2 and "not found" in err
    code, _, err = _cli(capsys, "lineage", "acme/clf", "--up", "--down")
    assert code == 2 and "--up and --down" in err
    code, out, _ = _cli(capsys, "lineage", "reindex")
    assert code == 0 and "indexed 7 repos" in out


def test_a_card_edit_that_keeps_the_lineage_is_a_revision(local_store: Store, local_family: Family) -> None:
    card = local_store.read_bytes("acme/clf", "README.md").decode()
    edited = commit(local_store, "acme/clf", {"README.md": card + "\n## Evaluation\n\naccuracy 0.96\n"})
    answer = describe(local_store, "model", "acme/clf", edited, up=True, down=False, depth=1)
    assert _edges(answer) == {(f"model:acme/clf@{local_family.clf_head}", f"model:acme/clf@{edited}", "revision")}


def test_an_input_named_without_a_commit_is_pinned_to_the_head_the_hub_held(local_store: Store,
                                                                            local_family: Family) -> None:
    local_store.create_repo("acme/finetuned")
    made = commit(local_store, "acme/finetuned", {"README.md": "---\nbase_model: acme/clf\n---\n"})
    answer = describe(local_store, "model", "acme/finetuned", made, up=True, down=False, depth=1)
    assert _edges(answer) == {(f"model:acme/clf@{local_family.clf_head}", f"model:acme/finetuned@{made}", "base")}
    outside = commit(local_store, "acme/finetuned", {"README.md": "---\nbase_model: google/bert-base\n---\n"})
    answer = describe(local_store, "model", "acme/finetuned", outside, up=True, down=False, depth=1)
    assert _edges(answer) == {("model:google/bert-base", f"model:acme/finetuned@{outside}", "base")}


def test_the_search_command(cli_family: Family, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _cli(capsys, "search", "--metric", "accuracy>=0.95", "--on", "acme/news:test", "--json")
    assert code == 0 and [h["repo_id"] for h in json.loads(out)["hits"]] == ["acme/clf"]
    code, out, _ = _cli(capsys, "search", "token-classification", "--type", "model", "--json")
    assert code == 0 and [h["repo_id"] for h in json.loads(out)["hits"]] == ["acme/other-clf"]
    code, out, _ = _cli(capsys, "search", "--filter", "base_model:acme/clf", "--sort", "metric:accuracy")
    assert code == 0 and out.startswith("1 repo\n") and "0.9000" in out  # the table, with the metric column
    code, _, err = _cli(capsys, "search", "--metric", "accuracy>>1")
    assert code == 2 and "metric filter" in err
    code, _, err = _cli(capsys, "search", "--sort", "stars")
    assert code == 2 and "unknown sort" in err
