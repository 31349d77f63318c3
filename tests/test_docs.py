"""The README is a front door and the docs hold together: every relative link resolves."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LINK = re.compile(r"\]\(([^)#\s]+)(#[^)]*)?\)")


def _pages() -> list[Path]:
    return [ROOT / "README.md", ROOT / "bench" / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def test_the_readme_is_a_front_door() -> None:
    readme = (ROOT / "README.md").read_text()
    assert len(readme.splitlines()) <= 400, "stage guides and benchmark history belong in docs/"
    for heading in ("## Two commands", "## Concepts", "## Guides", "## Headline figures"):
        assert heading in readme
    assert "docs/benchmarks.md" in readme


def test_every_relative_link_resolves() -> None:
    broken = [f"{page.relative_to(ROOT)} → {match.group(1)}" for page in _pages()
              for match in LINK.finditer(page.read_text())
              if not match.group(1).startswith(("http://", "https://", "mailto:"))
              and not (page.parent / match.group(1)).exists()]
    assert broken == []


def test_every_guide_is_linked_from_the_readme() -> None:
    readme = (ROOT / "README.md").read_text()
    guides = {p.name for p in (ROOT / "docs").glob("*.md")} - {"cli.md"}
    unlinked = sorted(name for name in guides if f"docs/{name}" not in readme)
    assert unlinked == [], "add them to the README's table of guides"
