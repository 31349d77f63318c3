"""/docs of the hub server and of fmhub serve load Swagger UI from the server itself, not a CDN, so the page
works on an air-gapped site."""

from __future__ import annotations

import re

import httpx

from fmhub.http import ASSETS


def _check_docs(url: str) -> None:
    page = httpx.get(f"{url}/docs")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    sources = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    assert sources and all(s.startswith(ASSETS) for s in sources), sources  # nothing from another host
    for source in sources:
        asset = httpx.get(url + source)
        assert asset.status_code == 200 and len(asset.content) > 100, source
    assert httpx.get(f"{url}/openapi.json").json()["info"]["title"].startswith("fmhub")
    assert "swagger-ui-bundle.js" in " ".join(sources) and "cdn" not in page.text


def test_the_hub_serves_its_docs_offline(hub_url: str) -> None:
    _check_docs(hub_url)


def test_fmhub_serve_serves_its_docs_offline(classifier: str) -> None:
    from fmhub.serve import ServeConfig, app_for
    from fmhub.serve._live import running

    with running(app_for(ServeConfig(model=classifier, threads=1), load_first=True)) as url:
        _check_docs(url)
