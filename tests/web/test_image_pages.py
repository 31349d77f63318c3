"""The web UI over an image dataset and an image classifier's report card: the dataset viewer shows the images
(inline data: URIs of the stored bytes, under the pages' CSP) and the image quality facts; the error browser shows
each misclassified image."""

from __future__ import annotations

import re

import httpx

from fmhub.evaluate import EvalConfig, evaluate


def test_image_rows_are_shown_as_images(image_classifier: str, tiny_images: str) -> None:
    from fmhub.constants import settings
    from fmhub.serve._live import running
    from fmhub.server import HubConfig, create_app
    from fmhub.store import open_store

    report = evaluate(EvalConfig(model=image_classifier, data=tiny_images, skip=("robustness", "efficiency",
                                                                                 "baseline")), push=True).report
    assert report["input_column"] == "image"
    mistakes = sum(n for g, row in enumerate(report["confusion_matrix"]) for p, n in enumerate(row) if g != p)
    home = settings().home
    with open_store(f"sqlite:///{home / 'fmhub.db'}", (home / "blobs").as_uri()) as store, \
            running(create_app(store, HubConfig(admin_token="fmhub_image-pages-admin-0123456789")), ready_path=None) as url:
        viewer = httpx.get(f"{url}/datasets/{tiny_images}/viewer/default/test", headers={"Accept": "text/html"})
        assert viewer.status_code == 200
        cells = re.findall(r'<img class="cell-image" src="data:image/png;base64,[A-Za-z0-9+/=]+" alt="(\d)/\d+\.png"',
                           viewer.text)
        assert len(cells) == 20 and "img-src 'self' data:" in viewer.headers["content-security-policy"]
        facts = viewer.text.split("<h2>Quality</h2>", 1)[1].split("</section>", 1)[0]
        assert "unreadable files (left out)" in facts and "8 × 8 px" in facts
        assert "b&#39;\\x89PNG" not in viewer.text and "\\x89PNG" not in viewer.text  # never the raw bytes
        card = httpx.get(f"{url}/{image_classifier}/eval/main/{tiny_images}/test", headers={"Accept": "text/html"})
        assert card.status_code == 200
        errors = card.text.split('data-role="errors"', 1)[1]
        shown = re.findall(r'<img class="cell-image" src="data:image/png;base64,', errors)
        assert mistakes and len(shown) == min(mistakes, 20)  # each misclassified image, on the first page
