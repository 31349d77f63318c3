"""The report card page shows the explanations section and, in the error browser, each explained row's
attribution heat map (texts: coloured tokens; images: a grid of regions)."""

from __future__ import annotations

import os
import re
from concurrent.futures import ThreadPoolExecutor

import httpx

from fmhub.evaluate import EvalConfig, evaluate
from fmhub.explain import ExplainOptions

CHROMIUM = os.environ.get("FMHUB_TEST_CHROMIUM", "/usr/bin/chromium")


def _hub():
    from fmhub.constants import settings
    from fmhub.serve._live import running
    from fmhub.server import HubConfig, create_app
    from fmhub.store import open_store

    home = settings().home
    store = open_store(f"sqlite:///{home / 'fmhub.db'}", (home / "blobs").as_uri())
    return store, running(create_app(store, HubConfig(admin_token="fmhub_explain-pages-admin-0123456789")),
                          ready_path=None)


def test_report_card_shows_explanations_and_heat_maps(keyword_model: str, keyword_data: str, tmp_path) -> None:
    report = evaluate(EvalConfig(model=keyword_model, data=keyword_data, skip=("robustness", "efficiency", "baseline",
                                                                               "slices"),
                                 explain=ExplainOptions(explain_rows=24)), push=True).report
    assert report["explanations"]["rows"]["total"] == 24  # the whole test split
    store, server = _hub()
    with store, server as url:
        page = f"{url}/{keyword_model}/eval/main/{keyword_data}/test"
        card = httpx.get(page, headers={"Accept": "text/html"})
        assert card.status_code == 200
        panel = card.text.split('data-role="explanations"', 1)[1].split("</section>", 1)[0]
        assert "integrated-gradients" in panel and "random" in panel and "attention-rollout" in panel
        completeness = report["explanations"]["completeness"]  # fixed steps: reported per row, not forced
        assert completeness["rows"] == 24 and 0 <= completeness["holds"] <= 24
        assert re.search(rf"Completeness .*: {completeness['holds']} of 24 rows", panel)
        assert '<span class="mono">robot</span>' in panel  # the "yes" class's top token
        correct = httpx.get(page, params={"gold": "yes", "pred": "yes"}, headers={"Accept": "text/html"})
        rows = correct.text.split('data-role="errors"', 1)[1]
        heat = re.findall(r'<mark style="background: rgb\((\d+),(\d+),(\d+)\)" title="robot: \+[\d.]+">robot</mark>',
                          rows)
        assert heat and all(int(g) > int(r) for r, g, _ in heat)  # the keyword is green (supports "yes")
        assert "why “yes” (integrated-gradients): <span class=\"mono\">robot</span>" in rows
        if os.path.exists(CHROMIUM):
            # In a thread of its own: Playwright's sync API refuses a thread where an asyncio loop runs, and an
            # earlier test in this worker may have left one.
            with ThreadPoolExecutor(1) as pool:
                pool.submit(_check_in_browser, page, tmp_path).result()


def _check_in_browser(page: str, tmp_path) -> None:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM)
        tab = browser.new_page(viewport={"width": 1280, "height": 900})
        tab.goto(f"{page}?gold=yes&pred=yes#errors")
        assert tab.locator("[data-role=explanations] table tr").count() == 4
        assert tab.locator("table.error-rows mark").count() > 0
        tab.screenshot(path=str(tmp_path / "explanations.png"), full_page=True)
        browser.close()


def test_image_errors_show_region_grids(image_classifier: str, tiny_images: str) -> None:
    report = evaluate(EvalConfig(model=image_classifier, data=tiny_images, skip=("robustness", "efficiency",
                                                                                 "baseline", "slices")),
                      push=True).report
    section = report["explanations"]
    assert section["kind"] == "pixels" and section["unavailable"]["attention-rollout"].startswith("attention-rollout")
    store, server = _hub()
    with store, server as url:
        card = httpx.get(f"{url}/{image_classifier}/eval/main/{tiny_images}/test", headers={"Accept": "text/html"})
        errors = card.text.split('data-role="errors"', 1)[1]
        grids = re.findall(r'<table class="attr-grid" data-role="attribution"', errors)
        assert grids and len(grids) <= section["rows"]["total"]
        cells = errors.split('<table class="attr-grid"', 1)[1].split("</table>", 1)[0].count("<td ")
        assert cells == 64  # a ResNet has no patches of its own: 16×16 inputs → an 8×8 grid of 2-pixel regions
