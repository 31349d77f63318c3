"""Impact answers in pages (limit, cursor, total, the Link header) through the Python API, the HTTP API, the
Hub client and the CLI; serve checks recorded as nodes under the version they served."""

from __future__ import annotations

import json

import pytest

from _lineage_family import CHECK_KEY, Family, build_family, listed, save_check
from fmhub.errors import InvalidInputError
from fmhub.lineage import describe
from fmhub.lineage import _tables as lt
from fmhub.store import Store


@pytest.fixture
def family(local_store: Store) -> Family:
    return build_family(local_store)


def test_pages_add_up_to_the_whole_listing(local_store: Store, family: Family) -> None:
    whole = describe(local_store, "dataset", "acme/news", None, impact=True, evaluations=True)
    assert whole["total"] == len(listed(whole)) >= 8 and whole["next_cursor"] is None
    seen, cursor, pages = [], None, 0
    while True:
        page = describe(local_store, "dataset", "acme/news", None, impact=True, evaluations=True, limit=3,
                        cursor=cursor)
        pages += 1
        assert page["total"] == whole["total"] and page["roots"] == whole["roots"]  # roots come with each page
        assert len(listed(page)) <= 3
        seen += listed(page)
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == listed(whole) and pages == -(-whole["total"] // 3)  # oldest first, each node once


def test_a_page_after_the_last_node_is_empty_and_bad_cursors_are_clear(local_store: Store, family: Family) -> None:
    whole = describe(local_store, "dataset", "acme/news", None, impact=True)
    last = str(max(int(p) for p in [whole.get("next_cursor") or 0]) + 10**9)
    assert listed(describe(local_store, "dataset", "acme/news", None, impact=True, cursor=last)) == []
    for cursor in ("abc", "-1", "1e3"):
        with pytest.raises(InvalidInputError, match="cursor"):
            describe(local_store, "dataset", "acme/news", None, impact=True, cursor=cursor)
    with pytest.raises(InvalidInputError, match="limit"):
        describe(local_store, "dataset", "acme/news", None, impact=True, limit=0)


def test_hidden_nodes_keep_distinct_names_across_pages(local_store: Store, family: Family) -> None:
    hidden = []
    cursor = None
    while True:
        page = describe(local_store, "dataset", "acme/news", None, impact=True, limit=1, cursor=cursor,
                        may_read=lambda node: node.kind == "dataset")
        hidden += [n["id"] for n in page["nodes"] if n.get("hidden")]
        if (cursor := page["next_cursor"]) is None:
            break
    assert len(hidden) == page["total"] and len(set(hidden)) == len(hidden)


def test_a_serve_check_is_a_node_under_the_version_it_served(local_store: Store, family: Family) -> None:
    save_check(local_store, f"acme/clf-int8@{family.int8}", agreement=0.97)
    save_check(local_store, f"acme/clf-int8@{family.int8}", kind="publish", key="d" * 64)  # not a serving record
    node_id = f"serve-check:acme/clf-int8@{family.int8}:{CHECK_KEY}"
    down = describe(local_store, "model", "acme/clf-int8", family.int8, down=True, up=False, depth=1)
    assert (f"model:acme/clf-int8@{family.int8}", node_id, "served") in {
        (e["from"], e["to"], e["relation"]) for e in down["edges"]}
    [node] = [n for n in down["nodes"] if n["id"] == node_id]
    assert node["kind"] == "serve-check" and node["info"]["agreement"] == 0.97 and node["info"]["rows"] == 32
    assert node["info"]["pipeline"] == "demo" and node["info"]["step"] == "check" and node["repo_type"] == "model"
    assert [n["kind"] for n in down["nodes"]].count("serve-check") == 1
    impact = describe(local_store, "dataset", "acme/news", "v1", impact=True)
    assert node_id in listed(impact)  # a deletion request reaches what was checked for serving
    save_check(local_store, f"acme/clf-int8@{family.int8}", agreement=1.0)  # the same check again: updated, not doubled
    again = describe(local_store, "model", "acme/clf-int8", family.int8, down=True, up=False, depth=1)
    assert [n["info"]["agreement"] for n in again["nodes"] if n["kind"] == "serve-check"] == [1.0]


def test_reindex_keeps_serve_checks(local_store: Store, family: Family) -> None:
    from fmhub.indexing import reindex

    save_check(local_store, f"acme/clf@{family.clf}")
    before = listed(describe(local_store, "dataset", "acme/news", None, impact=True))
    with local_store.db.write() as conn:
        conn.execute(lt.lineage_edges.delete())
        conn.execute(lt.lineage_nodes.delete())
    reindex(local_store)
    after = listed(describe(local_store, "dataset", "acme/news", None, impact=True))
    assert sorted(after) == sorted(before) and f"serve-check:acme/clf@{family.clf}:{CHECK_KEY}" in after


def test_the_impact_command_pages(tmp_path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    from fmhub.cli import main
    from fmhub.constants import settings
    from fmhub.store import open_store

    monkeypatch.setenv("FMHUB_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("COLUMNS", "200")
    settings.cache_clear()
    try:
        with open_store() as store:
            made = build_family(store)
            save_check(store, f"acme/clf-int8@{made.int8}")
        assert main(["lineage", "impact", "acme/news@v1"]) == 0
        everything = capsys.readouterr().out
        assert "serve-check" in everything and "demo/check: 100% as offline on 32 rows" in everything
        assert main(["lineage", "impact", "acme/news@v1", "--limit", "2"]) == 0
        out = capsys.readouterr().out
        assert "2 versions and records of" in out and "--limit 2 --cursor" in out
        cursor = out.split("--cursor", 1)[1].split()[0]
        assert main(["lineage", "impact", "acme/news@v1", "--limit", "2", "--cursor", cursor, "--json"]) == 0
        page = json.loads(capsys.readouterr().out)
        assert 1 <= len(listed(page)) <= 2 and page["total"] > 2
        assert main(["lineage", "impact", "acme/news@v1", "--cursor", "nope"]) == 2
        assert "cursor" in capsys.readouterr().err
    finally:
        settings.cache_clear()
