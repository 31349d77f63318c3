"""Cards to HTML: markdown rendered, then cut to the allowlist; images only from the revision's files."""

from __future__ import annotations

import pytest

from fmhub.server.web._markdown import render_markdown

BASE = "/acme/m/resolve/" + "a" * 40 + "/"

PAYLOADS = [
    "<script>alert(1)</script>", "<img src=x onerror=alert(1)>", '<a href="javascript:alert(1)">x</a>',
    "[x](javascript:alert(1))", "<svg onload=alert(1)><script>alert(1)</script></svg>", "<iframe src=x></iframe>",
    "<style>body{}</style>", '<p style="color:red" onclick="alert(1)">p</p>', '<a href="JaVaScRiPt:alert(1)">x</a>',
    '<a href="&#106;avascript:alert(1)">x</a>', '<img src="data:image/svg+xml,<svg onload=alert(1)>">',
    '<math><mtext><table><mglyph><style><img src=x onerror=alert(1)>', "<object data=x></object><embed src=x>",
    '<form action="/x"><button formaction="javascript:alert(1)">b</button></form>', "<base href=//evil/>",
    '<meta http-equiv="refresh" content="0;url=javascript:alert(1)">', '<details open ontoggle=alert(1)>',
]


@pytest.mark.parametrize("payload", PAYLOADS)
def test_payloads_leave_nothing_that_runs(payload: str) -> None:
    html = render_markdown(f"# Card\n\n{payload}\n\nafter", base=BASE, files=frozenset()).lower()
    for bad in ("<script", "onerror", "onload", "onclick", "ontoggle", '="javascript', "<svg", "<iframe", "<style",
                "style=", "<object", "<embed", "<form", "formaction", "<base", "<meta", "<math", '="data:'):
        assert bad not in html, (payload, bad, html)


def test_markdown_features_survive() -> None:
    html = render_markdown("# T\n\n| a | b |\n|---|--:|\n| 1 | 2 |\n\n```python\nx = 1\n```\n\n~~old~~ [link](https://x.org) "
                           "[rel](docs/a.md)\n\n<details><summary>s</summary>d</details>", base=BASE)
    assert "<table>" in html and "<td>2</td>" in html and "style=" not in html
    assert '<code class="language-python">' in html and "<s>old</s>" in html and "<details>" in html
    assert 'href="https://x.org" rel="noopener noreferrer nofollow"' in html


def test_images_load_only_from_the_revisions_files() -> None:
    files = frozenset({"plots/cm.png", "docs/img/a.png"})
    html = render_markdown("![a](plots/cm.png) ![b](missing.png) ![c](https://tracker.example/p.png) ![d](../x.png)",
                           base=BASE, files=files)
    assert f'src="{BASE}plots/cm.png"' in html
    assert html.count("src=") == 1  # the missing, remote and escaping ones are not requested
    nested = render_markdown("![a](img/a.png)", base=BASE, folder="docs", files=files)
    assert f'src="{BASE}docs/img/a.png"' in nested
