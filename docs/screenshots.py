"""The README's screenshots of the web UI, taken with Chromium from a real run.

By default it builds the web tests' store (the tiny example pipeline, ``fmhub run examples/tiny/pipeline.yaml``,
plus a noisy copy of its dataset so the error browser has mistakes to show) in a temporary folder; with
``--home`` it shows an existing store instead (e.g. ``.fmhub-demo`` after ``make demo``, with ``--model
demo/bbc-minilm --dataset demo/bbc-news``). It serves the hub app on loopback and writes small PNGs to
docs/images/: home, model, report card, error browser, dataset viewer, run and lineage pages.

    .venv/bin/python docs/screenshots.py
    .venv/bin/python docs/screenshots.py --home .fmhub-demo --model demo/bbc-minilm --dataset demo/bbc-news
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "docs" / "images"
ARGS = ["--no-sandbox", "--headless", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run"]


def _small_png(path: Path) -> None:
    """256-colour PNG: a UI screenshot keeps its look at a fraction of the bytes."""
    from PIL import Image

    image = Image.open(path).convert("RGB")
    image.quantize(colors=256, method=Image.Quantize.MEDIANCUT).save(path, optimize=True)


def shoot(url: str, model: str, dataset: str, split: str, lineage: str) -> list[Path]:
    import httpx
    from playwright.sync_api import sync_playwright

    card = f"/{model}/eval/main/{dataset}/{split}"
    report = httpx.get(f"{url}/{model}/resolve/main/eval/{dataset}/{split}/report.json", timeout=120).json()
    matrix, labels = report["confusion_matrix"], report["labels"]
    gold, pred = max(((g, p) for g in range(len(labels)) for p in range(len(labels)) if g != p),
                     key=lambda c: matrix[c[0]][c[1]])
    run = (httpx.get(f"{url}/api/models/{model}", timeout=120).json().get("cardData") or {}).get("fmhub", {}).get(
        "lineage", {}).get("run_id")
    OUT.mkdir(parents=True, exist_ok=True)
    written = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 820}, device_scale_factor=1)
        for name, path, height in (("home", "/", 620), ("model", f"/{model}", 820), ("report-card", card, 1100),
                                   ("dataset-viewer", f"/datasets/{dataset}/viewer", 820),
                                   ("run", f"/-/runs/{run}" if run else "/-/runs", 760),
                                   ("lineage", "/{}/lineage/{}".format(*lineage.split("@", 1)), 1000)):
            page.goto(url + path)
            page.wait_for_load_state("networkidle")
            if name == "lineage":  # plotly draws the graph after load
                page.locator("[data-chart=lineage] .main-svg").first.wait_for()
            if name == "report-card":  # click the largest off-diagonal cell: the error browser filters to it
                box = page.locator("[data-chart=confusion] .nsewdrag").first.bounding_box()
                n = len(labels)
                page.mouse.click(box["x"] + box["width"] / n * (pred + 0.5), box["y"] + box["height"] / n * (gold + 0.5))
                page.locator("[data-role=error-filter]", has_text=f"predicted {labels[pred]}").wait_for()
            target = OUT / f"{name}.png"
            page.screenshot(path=str(target), clip={"x": 0, "y": 0, "width": 1280, "height": height}, full_page=True)
            _small_png(target)
            written.append(target)
            if name == "report-card":
                target = OUT / "error-browser.png"
                page.locator("[data-role=errors]").screenshot(path=str(target))
                _small_png(target)
                written.append(target)
        browser.close()
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--home", type=Path, help="an existing FMHUB_HOME to show (default: build the tiny one)")
    parser.add_argument("--model", default="tiny/topics-bert", help="the model whose pages are shown")
    parser.add_argument("--dataset", default="tiny/topics-noisy", help="the dataset of its report card")
    parser.add_argument("--split", default="test", help="the split of its report card")
    parser.add_argument("--lineage", default="tiny/topics-bert-int8@prod",
                        help="the model version whose Lineage tab is shown (REPO@REV: a variant shows both ways)")
    args = parser.parse_args()
    if "@" not in args.lineage:
        parser.error("--lineage must be REPO@REVISION, e.g. demo/bbc-minilm-int8@prod")

    from fmhub.serve._live import running
    from fmhub.server import HubConfig, create_app
    from fmhub.store import open_store

    with tempfile.TemporaryDirectory(prefix="fmhub-shots-") as tmp:
        home = args.home
        if home is None:
            sys.path.insert(0, str(ROOT / "tests" / "web"))
            from web_site import build

            home = Path(tmp) / "home"
            print("building the tiny example store (about a minute)…", flush=True)
            build(home)
        with open_store(f"sqlite:///{home / 'fmhub.db'}", (home / "blobs").as_uri()) as store, \
                running(create_app(store, HubConfig(admin_token="fmhub_screenshots-token-0123456789")),
                        ready_path=None) as url:
            for path in shoot(url, args.model, args.dataset, args.split, args.lineage):
                print(f"wrote {path.relative_to(ROOT)} ({path.stat().st_size // 1000} kB)")


if __name__ == "__main__":
    main()
