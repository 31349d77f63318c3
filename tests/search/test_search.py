"""The search index: kept in the write's transaction, queried with the Hub's conventions plus metric filters."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select, text

from _lineage_family import Family, build_family, commit
from fmhub.errors import InvalidInputError
from fmhub.search import MetricFilter, Search, SearchQuery
from fmhub.search import _tables as st
from fmhub.store import AddFile, Store


@pytest.fixture
def family(metadata_store: Store) -> Family:  # SQLite and PostgreSQL
    return build_family(metadata_store)


@pytest.fixture
def store(metadata_store: Store) -> Store:
    return metadata_store


def _ids(store: Store, **query) -> list[str]:
    query.setdefault("readable", None)
    query.setdefault("limit", 100)
    return [hit.repo_id for hit in Search(store.db).query(SearchQuery(**query)).hits]


def test_the_index_follows_every_write(store: Store, family: Family) -> None:
    assert _ids(store, search=["clf"], sort="id") == ["acme/clf", "acme/clf-int8", "acme/other-clf", "alice/clf-onnx"]
    store.create_repo("acme/new-clf")
    assert "acme/new-clf" in _ids(store, search=["new-clf"])  # created: listed before any card
    commit(store, "acme/new-clf", {"README.md": "---\npipeline_tag: fill-mask\nlicense: mit\n---\n"})
    assert _ids(store, task="fill-mask") == ["acme/new-clf"]
    store.create_branch("acme/new-clf", "dev")
    card = store.put_bytes(b"---\npipeline_tag: translation\n---\n")
    store.commit("acme/new-clf", [AddFile("README.md", card.sha256, card.size)], revision="dev", title="dev card",
                 author="alice")
    assert _ids(store, task="fill-mask") == ["acme/new-clf"]  # another branch does not change the listing
    store.update_repo("acme/new-clf", private=True)
    assert _ids(store, task="fill-mask", readable=frozenset()) == []
    assert _ids(store, task="fill-mask", readable=frozenset({"acme"})) == ["acme/new-clf"]
    store.delete_repo("acme/new-clf")
    assert _ids(store, search=["new-clf"]) == []
    with store.db.read() as conn:
        for table in (st.search_docs, st.search_tags, st.search_metrics):
            assert conn.execute(select(func.count()).select_from(table)
                                .where(table.c.repo_pk.notin_(select(text("pk FROM repos"))))).scalar() == 0


def test_search_matches_id_substrings_and_card_words(store: Store, family: Family) -> None:
    assert _ids(store, search=["LF-I"]) == ["acme/clf-int8"]  # case-insensitive substring, like the Hub
    assert _ids(store, search=["cl"], author="ALICE") == ["alice/clf-onnx"]  # 2 characters: a scan, same answer
    assert _ids(store, text="token-classification") == ["acme/other-clf"]
    assert _ids(store, text="apache") == ["acme/base"]  # license:apache-2.0
    assert _ids(store, text="transformers acme/news", repo_type="model", sort="id") == [
        "acme/clf", "acme/clf-int8", "acme/other-clf", "acme/student", "alice/clf-onnx"]
    assert _ids(store, search=["100%_"]) == []  # LIKE wildcards are literal


def test_filters_are_tags_and_combine(store: Store, family: Family) -> None:
    assert _ids(store, filters=["dataset:acme/news", "base_model:acme/clf"]) == ["acme/clf-int8"]
    assert _ids(store, filters=["License:MIT", "token-classification"]) == ["acme/other-clf"]
    assert _ids(store, repo_type="dataset", filters=["task_categories:text-classification"]) == ["acme/news"]
    assert _ids(store, filters=["no-such-tag"]) == []


def test_sorts(store: Store, family: Family) -> None:
    newest_first = _ids(store, repo_type="model")
    assert newest_first[0] == "acme/other-clf"  # the last repo written
    assert _ids(store, repo_type="model", direction=1) == newest_first[::-1]
    assert _ids(store, repo_type="model", sort="id")[:2] == ["acme/base", "acme/clf"]
    assert _ids(store, repo_type="model", sort="createdAt", limit=1) == ["acme/other-clf"]
    page = Search(store.db).query(SearchQuery(repo_type="model", sort="id", limit=2, offset=2, readable=None),
                                  count=True)
    assert [h.repo_id for h in page.hits] == ["acme/clf-int8", "acme/other-clf"] and page.total == 6 and page.more


def test_metric_filters_and_sorts_read_the_report_cards(store: Store, family: Family) -> None:
    good = MetricFilter.parse("accuracy>=0.95", "acme/news:test")
    assert _ids(store, metrics=[good]) == ["acme/clf"]
    assert _ids(store, metrics=[MetricFilter.parse("accuracy > 0.5")], sort="metric:accuracy") == [
        "acme/clf", "acme/clf-int8", "acme/other-clf"]
    assert _ids(store, metrics=[MetricFilter.parse("ece<=0.05")], sort="metric:ece", limit=1) == ["acme/clf"]
    hits = Search(store.db).query(SearchQuery(sort="metric:accuracy", readable=None, metric_on="acme/news:test"))
    assert [(h.repo_id, h.metric) for h in hits.hits] == [("acme/clf", 0.96), ("acme/clf-int8", 0.9),
                                                          ("acme/other-clf", 0.7)]
    assert _ids(store, metrics=[MetricFilter.parse("accuracy>=0.5", "acme/other:test")]) == []
    values = Search(store.db).metric_values(["acme/clf"], "accuracy")
    assert values == {"acme/clf": [(family.clf, "acme/news", "test", 0.96)]}


@pytest.mark.parametrize(("expression", "on"), [("accuracy", None), ("accuracy>=high", None), ("acc>=nan", None),
                                                 ("accuracy>=1", "not-a-repo"), ("a;drop table>=1", None)])
def test_bad_metric_filters_are_clear_errors(expression: str, on: str | None) -> None:
    with pytest.raises(InvalidInputError):
        MetricFilter.parse(expression, on)


def test_bad_queries_are_clear_errors(local_store: Store) -> None:
    search = Search(local_store.db)
    for bad in (SearchQuery(sort="stars"), SearchQuery(direction=0), SearchQuery(limit=0), SearchQuery(offset=-1),
                SearchQuery(repo_type="space"), SearchQuery(sort="metric:")):
        with pytest.raises(InvalidInputError):
            search.query(bad)


def test_private_repos_are_listed_to_their_readers_only(local_store: Store) -> None:
    family = build_family(local_store)
    assert family.onnx
    assert "alice/clf-onnx" not in _ids(local_store, search=["clf"], readable=frozenset())
    assert "alice/clf-onnx" not in _ids(local_store, search=["clf"], readable=frozenset({"acme", "bob"}))
    assert "alice/clf-onnx" in _ids(local_store, search=["clf"], readable=frozenset({"alice"}))


def test_a_store_from_before_the_index_is_backfilled(local_store: Store) -> None:
    from fmhub.indexing import BACKFILL_KEY, backfill_pending, reindex
    from fmhub.store._schema import hub_settings

    build_family(local_store)
    with local_store.db.write() as conn:  # as migration 0007 leaves a store that had repos: empty index, marked
        for table in (st.search_tags, st.search_metrics, st.search_docs):
            conn.execute(table.delete())
        conn.execute(text("DELETE FROM search_fts"))
        conn.execute(hub_settings.insert().values(key=BACKFILL_KEY, value="pending"))
    assert _ids(local_store) == [] and backfill_pending(local_store)
    assert reindex(local_store) == 7
    assert not backfill_pending(local_store)
    assert _ids(local_store, search=["clf"], metrics=[MetricFilter.parse("accuracy>=0.95")]) == ["acme/clf"]
