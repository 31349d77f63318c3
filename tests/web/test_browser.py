"""The web UI in Chromium: every page loads clean, clicks reach the right objects, payloads run nothing.

Screenshots of each page are written to tests/web/artifacts/ (gitignored) for people to look at.
"""

from __future__ import annotations

import json

import httpx

from browsing import log_in
from web_site import ALICE_TOKEN

PAGES = {
    "home": "/", "models": "/models", "datasets": "/datasets", "search-metric": "/?sort=metric:accuracy",
    "model-card": "/tiny/topics-bert", "variant-card": "/tiny/topics-bert-int8", "files": "/tiny/topics-bert/tree/main",
    "file-json": "/tiny/topics-bert/blob/main/config.json", "commits": "/tiny/topics-bert/commits/main",
    "refs": "/tiny/topics-bert-int8/refs", "evaluations": "/tiny/topics-bert/eval/main",
    "report-card": "/tiny/topics-bert/eval/main/tiny/topics-noisy/test",
    "report-variant": "/tiny/topics-bert-int8/eval/prod/tiny/topics/test", "dataset-card": "/datasets/tiny/topics",
    "dataset-viewer": "/datasets/tiny/topics/viewer/default/train", "parquet-file":
        "/datasets/tiny/topics/blob/main/data/test-00000-of-00001.parquet",
    "runs": "/-/runs", "leaderboards": "/-/leaderboards", "lineage-model": "/tiny/topics-bert/lineage/main",
    "lineage-dataset": "/datasets/tiny/topics/lineage/main", "search-words": "/?q=transformers+text-classification",
    "compare-reports": "/-/compare/reports?card=tiny/topics-bert@main:tiny/topics/test"
                       "&card=tiny/topics-bert-int8@prod:tiny/topics/test", "profile": "/tiny", "login": "/login",
    "not-found": "/tiny/no-such-model",
}


def test_every_page_loads_with_no_console_error_and_no_failed_request(visit) -> None:
    for name, path in PAGES.items():
        visit.open(path, shot=name, status=404 if name == "not-found" else 200)
        assert visit.page.locator("main").count() == 1
    runs = httpx.get(visit.base + "/-/runs").text
    run_ids = sorted(set(__import__("re").findall(r'href="/-/runs/(r-[0-9a-f]{12})"', runs)))
    visit.open(f"/-/runs/{run_ids[0]}", shot="run")
    visit.open("/-/runs/compare?" + "&".join(f"run={r}" for r in run_ids), shot="runs-compare")
    assert visit.page.locator("[data-role=curves] .js-plotly-plot").count() >= 1
    commits = visit.page  # the commit page and a comparison, reached from the history by clicks
    visit.open("/tiny/topics-bert/commits/main")
    commits.locator("ol.commits a.commit-title").first.click()
    commits.wait_for_load_state("networkidle")
    assert "/tiny/topics-bert/commit/" in commits.url and commits.locator("table.changes").count() == 1
    visit.shoot("commit")
    visit.open("/tiny/topics-bert/commits/main")
    commits.locator("form.compare-form button[type=submit]").click()
    commits.wait_for_load_state("networkidle")
    assert "/compare/" in commits.url and "Comparing" in commits.content()
    visit.shoot("compare")
    visit.clean()


def test_from_home_to_model_report_card_cell_and_run(visit) -> None:
    page = visit.page
    visit.open("/")
    page.click("a.repo-name:text-is('tiny/topics-bert')")
    page.wait_for_load_state("networkidle")
    assert page.url.endswith("/tiny/topics-bert")
    page.click(".side a.card-link:has-text('tiny/topics-noisy')")
    page.wait_for_load_state("networkidle")
    assert page.url.endswith("/tiny/topics-bert/eval/main/tiny/topics-noisy/test")
    report = json.loads(httpx.get(f"{visit.base}/tiny/topics-bert/resolve/main/eval/tiny/topics-noisy/test/report.json"
                                  ).content)
    for name in ("accuracy", "f1_macro"):  # the tiles show the report's numbers
        tile = page.locator(f".tile[data-metric={name}] .tile-value").inner_text()
        assert tile == f"{report['metrics'][name]:.4f}", (name, tile)
    labels, matrix = report["labels"], report["confusion_matrix"]
    gold, pred = max(((g, p) for g in range(len(labels)) for p in range(len(labels)) if g != p),
                     key=lambda c: matrix[c[0]][c[1]])
    assert matrix[gold][pred] > 0, "the noisy split must give the model mistakes to browse"
    # click that cell of the plotly heatmap: the error browser then lists exactly that cell's rows
    heatmap = page.locator("[data-chart=confusion] .nsewdrag").first
    box = heatmap.bounding_box()
    cell_w, cell_h = box["width"] / len(labels), box["height"] / len(labels)
    page.mouse.click(box["x"] + cell_w * (pred + 0.5), box["y"] + cell_h * (gold + 0.5))
    page.locator("[data-role=error-filter]", has_text=f"predicted {labels[pred]}").wait_for()
    rows = page.locator("table.error-rows tbody tr[data-row]")
    assert rows.count() == matrix[gold][pred] == int(page.locator("[data-role=error-total]").inner_text())
    assert {rows.nth(i).get_attribute("data-gold") for i in range(rows.count())} == {labels[gold]}
    assert {rows.nth(i).get_attribute("data-pred") for i in range(rows.count())} == {labels[pred]}
    import pyarrow.parquet as pq
    import io

    table = pq.read_table(io.BytesIO(httpx.get(
        f"{visit.base}/tiny/topics-bert/resolve/main/eval/tiny/topics-noisy/test/predictions.parquet").content))
    expected = {r for r, g, p in zip(table["row"].to_pylist(), table["label"].to_pylist(),
                                     table["prediction"].to_pylist()) if g == gold and p == pred}
    assert {int(rows.nth(i).get_attribute("data-row")) for i in range(rows.count())} == expected
    assert all(rows.nth(i).locator(".text-cell").inner_text().strip() not in ("", "—") for i in range(rows.count()))
    assert f"gold={labels[gold]}" in page.url and f"pred={labels[pred]}" in page.url
    visit.shoot("report-card-cell")
    # back to the model, then the run that made it
    page.goto(visit.base + "/tiny/topics-bert")
    page.click(".side .lineage a[href^='/-/runs/']")
    page.wait_for_load_state("networkidle")
    run_id = page.url.rsplit("/", 1)[-1]
    card = httpx.get(f"{visit.base}/api/models/tiny/topics-bert").json()["cardData"]
    assert run_id == card["fmhub"]["lineage"]["run_id"]
    assert page.locator("[data-role=curves] .js-plotly-plot").count() >= 2  # loss and eval metrics
    page.click("button[data-axis=epoch]")
    page.wait_for_timeout(200)
    assert "epoch" in page.locator("[data-role=curves] .xtitle").first.text_content()
    visit.clean()


def test_logged_out_users_see_no_private_repo_and_logged_in_members_do(visit) -> None:
    page = visit.page
    for path in ("/", "/models", "/acme"):  # acme's page lists none of its repos: its only one is private
        visit.open(path)
        assert "secret-model" not in page.content(), path
    visit.open("/acme/secret-model", status=404)
    missing = page.locator("main").inner_html()
    visit.open("/acme/nothing-here", status=404)
    assert page.locator("main").inner_html() == missing.replace("secret-model", "nothing-here")
    log_in(visit, ALICE_TOKEN)
    assert page.locator("details.menu summary").inner_text().startswith("alice")
    visit.open("/")
    assert "acme/secret-model" in page.content()
    visit.open("/acme/secret-model", shot="private-as-member")
    visit.open("/settings/tokens", shot="tokens")
    page.fill("input[name=name]", "browser-made")
    page.click("form.inline-form button[type=submit]")
    page.wait_for_load_state("networkidle")
    secret = page.locator("#new-token").inner_text()
    assert httpx.get(f"{visit.base}/api/whoami-v2", headers={"Authorization": f"Bearer {secret}"}).json()["name"] \
        == "alice"
    visit.open("/settings/organizations/acme", shot="members")
    page.click("details.menu summary")
    page.click("details.menu button[type=submit]")  # log out
    page.wait_for_load_state("networkidle")
    visit.open("/")
    assert "acme/secret-model" not in page.content()
    visit.clean()


def test_card_payloads_run_nothing(visit) -> None:
    visit.open("/tiny/xss-card", shot="xss-card")
    visit.page.wait_for_timeout(300)
    visit.open("/tiny/xss-card/blob/main/README.md")
    visit.page.wait_for_timeout(300)
    assert visit.dialogs == []
    assert not [m for m in visit.problems if "xss" in m.lower()]
    payload_urls = ("/xss-script-tag", "/xss-onerror", "/xss-style", "/xss-form", "/x")
    assert not [u for u in visit.requests if u.endswith(payload_urls) or u.startswith("javascript:")], visit.requests
    html = visit.page.locator(".markdown").inner_html()
    assert "Plain text after the payloads" in html
    for bad in ("<script", "onerror", 'href="javascript', 'src="javascript', "<svg", "<iframe", "<style", "onclick", "<object", "<embed",
                "ontoggle", "formaction"):
        assert bad not in html.lower(), bad
    visit.clean()


def test_the_lineage_tab_walks_from_a_model_to_its_data_and_what_was_made_from_it(visit) -> None:
    page = visit.page
    visit.open("/tiny/topics-bert")
    page.click("nav.tabs a:text-is('Lineage')")
    page.wait_for_load_state("networkidle")
    assert "/tiny/topics-bert/lineage/" in page.url
    page.locator("[data-role=lineage-graph].js-plotly-plot").wait_for()
    card = httpx.get(f"{visit.base}/api/models/tiny/topics-bert").json()["cardData"]["fmhub"]["lineage"]
    made_from = page.locator("[data-role=ancestors]")
    assert made_from.locator(f"a[href='/datasets/{card['dataset']}/tree/{card['dataset_commit']}']").count() == 1
    assert f"/-/runs/{card['run_id']}" in made_from.inner_html()  # the run that trained it
    made_into = page.locator("[data-role=descendants]").inner_text()  # acme/secret-model's base: private
    assert "hidden" in made_into and "secret" not in page.content()  # hidden, never named
    visit.shoot("lineage-tab")
    made_from.locator(f"a[href='/datasets/{card['dataset']}/tree/{card['dataset_commit']}']").click()
    page.wait_for_load_state("networkidle")
    assert page.url.endswith(f"/datasets/{card['dataset']}/tree/{card['dataset_commit']}")
    visit.open(f"/datasets/{card['dataset']}/lineage/{card['dataset_commit']}")
    impact = page.locator("[data-role=impact]").inner_text()
    assert "tiny/topics-bert" in impact and "tiny/topics-bert-int8" in impact
    visit.shoot("lineage-impact")
    log_in(visit, ALICE_TOKEN)
    visit.open("/tiny/topics-bert/lineage/main")
    assert "acme/secret-model" in page.locator("[data-role=descendants]").inner_text()
    visit.clean()
