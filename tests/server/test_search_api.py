"""Search and lineage over HTTP: the real huggingface_hub client's list_models / list_datasets arguments against
a live server, fmhub's /api/fmhub/search and /api/fmhub/lineage, and the Hub client (RemoteHub) over both."""

from __future__ import annotations

import httpx
import pytest
from huggingface_hub.errors import HfHubHTTPError

from _lineage_family import Family, build_family
from fmhub.client import Hub
from fmhub.search import MetricFilter, SearchQuery
from fmhub.store import Store


@pytest.fixture
def family(local_store: Store) -> Family:
    return build_family(local_store)


def test_list_models_with_its_documented_arguments(hf_api, family: Family) -> None:
    ids = lambda found: [m.id for m in found]  # noqa: E731
    assert ids(hf_api.list_models(search="clf", sort="id")) == ["acme/clf", "acme/clf-int8", "acme/other-clf"]
    assert ids(hf_api.list_models(author="acme", filter="token-classification")) == ["acme/other-clf"]
    assert ids(hf_api.list_models(trained_dataset="acme/news", filter=["base_model:acme/clf"])) == ["acme/clf-int8"]
    assert ids(hf_api.list_models(pipeline_tag="token-classification")) == ["acme/other-clf"]
    newest = ids(hf_api.list_models(sort="last_modified"))
    assert newest[0] == "acme/other-clf" and "alice/clf-onnx" not in newest  # private: not listed anonymously
    assert ids(hf_api.list_models(sort="created_at", limit=2)) == newest[:2]
    assert len(ids(hf_api.list_models(sort="downloads"))) == 5  # fmhub counts none: all listed, newest first
    [info] = hf_api.list_models(search="acme/clf-int8", cardData=True)
    assert info.card_data["fmhub"]["variant"]["method"] == "quantize" and info.pipeline_tag == "text-classification"
    assert info.library_name == "transformers" and "license:mit" in info.tags and info.private is False
    [full] = hf_api.list_models(search="acme/clf-int8", full=True)
    assert {s.rfilename for s in full.siblings} == {".gitattributes", "README.md", "eval/acme/news/test/report.json"}
    [expanded] = hf_api.list_models(search="acme/base", expand=["author", "sha", "tags"])
    assert expanded.author == "acme" and expanded.sha == family.base and expanded.created_at is None


def test_list_datasets_with_its_documented_arguments(hf_api, family: Family) -> None:
    assert [d.id for d in hf_api.list_datasets(task_categories="text-classification")] == ["acme/news"]
    assert [d.id for d in hf_api.list_datasets(dataset_name="news", search="acme")] == ["acme/news"]
    assert [d.id for d in hf_api.list_datasets(filter="license:cc-by-4.0", author="acme")] == ["acme/news"]
    [full] = hf_api.list_datasets(search="news", full=True)
    assert full.card_data["license"] == "cc-by-4.0"
    assert list(hf_api.list_datasets(language="fr")) == []


def test_pages_follow_the_link_header(hf_api, family: Family, monkeypatch: pytest.MonkeyPatch) -> None:
    from fmhub.server import _search

    monkeypatch.setattr(_search, "LIST_PAGE", 2)
    everything = [m.id for m in hf_api.list_models(sort="id")]
    assert len(everything) == 5 and len(set(everything)) == 5  # three pages of two, followed by the client


def test_unsupported_arguments_are_a_clear_400(hf_api, hub_url: str, family: Family) -> None:
    for call in (lambda: list(hf_api.list_models(inference="warm")),
                 lambda: list(hf_api.list_models(num_parameters="min:1B")),
                 lambda: list(hf_api.list_models(expand=["safetensors"])),
                 lambda: list(hf_api.list_models(sort="stars"))):
        with pytest.raises(HfHubHTTPError) as error:
            call()
        assert error.value.response.status_code == 400
    answer = httpx.get(f"{hub_url}/api/models", params={"apps": "x"})
    assert answer.status_code == 400 and "apps" in answer.json()["error"]
    assert list(hf_api.list_models(gated=True)) == []  # nothing is gated on fmhub


def test_private_repos_are_listed_to_those_who_may_read_them(hub_url: str, tokens, family: Family) -> None:
    def listed(token: str | None) -> list[str]:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        models = httpx.get(f"{hub_url}/api/models", params={"search": "onnx"}, headers=headers).json()
        found = httpx.get(f"{hub_url}/api/fmhub/search", params={"q": "onnx"}, headers=headers).json()
        assert [m["id"] for m in models] == [h["repo_id"] for h in found["hits"]]
        return [m["id"] for m in models]

    assert listed(None) == listed(tokens.bob) == listed(tokens.carol) == []
    assert listed(tokens.alice) == listed(tokens.admin) == ["alice/clf-onnx"]


def test_native_search_filters_by_report_card_metric(hub_url: str, family: Family) -> None:
    answer = httpx.get(f"{hub_url}/api/fmhub/search", params={"metric": "accuracy>=0.8", "on": "acme/news:test",
                                                              "sort": "metric:accuracy"}).json()
    assert [(h["repo_id"], h["metric"]) for h in answer["hits"]] == [("acme/clf", 0.96), ("acme/clf-int8", 0.9)]
    assert answer["total"] == 2 and answer["next"] is None
    bad = httpx.get(f"{hub_url}/api/fmhub/search", params={"metric": "accuracy>>1"})
    assert bad.status_code == 400 and "metric filter" in bad.json()["error"]


def test_lineage_routes_hide_what_the_caller_may_not_read(hub_url: str, tokens, family: Family) -> None:
    url = f"{hub_url}/api/fmhub/lineage/models/acme/clf"
    anonymous = httpx.get(url, params={"revision": family.clf, "direction": "down", "depth": 1}).json()
    assert "alice/clf-onnx" not in str(anonymous) and family.onnx not in str(anonymous)
    assert sum(1 for n in anonymous["nodes"] if n["hidden"]) == 1
    alice = httpx.get(url, params={"revision": family.clf, "direction": "down", "depth": 1},
                      headers={"Authorization": f"Bearer {tokens.alice}"}).json()
    assert f"model:alice/clf-onnx@{family.onnx}" in {n["id"] for n in alice["nodes"]}
    impact = httpx.get(f"{hub_url}/api/fmhub/lineage/datasets/acme/news/impact", params={"revision": "v1"}).json()
    assert impact["direction"] == "impact" and f"model:acme/student@{family.student}" in {
        n["id"] for n in impact["nodes"]}
    bad = httpx.get(url, params={"depth": 0})
    assert bad.status_code == 422 or bad.status_code == 400
    assert httpx.get(url, params={"revision": "nope"}).status_code == 404


def test_the_hub_client_searches_and_walks_lineage_remotely(hub_url: str, tokens, family: Family) -> None:
    with Hub.open(hub_url, tokens.alice) as hub:
        found = hub.search(SearchQuery(metrics=[MetricFilter.parse("accuracy>=0.95", "acme/news:test")]))
        assert [h.repo_id for h in found.hits] == ["acme/clf"] and found.total == 1
        assert [h.repo_id for h in hub.search(SearchQuery(search=["onnx"])).hits] == ["alice/clf-onnx"]
        graph = hub.lineage("acme/clf-int8", family.int8, direction="up", depth=1)
        assert graph["edges"] == [{"from": f"model:acme/clf@{family.clf}", "to": f"model:acme/clf-int8@{family.int8}",
                                   "relation": "variant"}]
        impact = hub.lineage_impact("acme/news", "v1")
        assert f"model:alice/clf-onnx@{family.onnx}" in {n["id"] for n in impact["nodes"]}
    with Hub.open(hub_url, None) as hub, pytest.raises(LookupError):
        hub.lineage("alice/clf-onnx")  # private: exactly as missing
