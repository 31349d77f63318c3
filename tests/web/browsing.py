"""A browser page under watch: console errors, page errors, dialogs, failed requests; screenshots.

(A module of its own, not conftest.py: test modules import it, and another folder's conftest would
shadow a ``from conftest import``.)
"""

from __future__ import annotations

from pathlib import Path

#: Screenshots of every page, for people to look at (gitignored).
ARTIFACTS = Path(__file__).parent / "artifacts"


class Watched:
    """A page whose console errors, page errors, dialogs and failed requests are recorded."""

    def __init__(self, page, base: str) -> None:
        self.page, self.base = page, base
        self.problems: list[str] = []
        self.requests: list[str] = []
        self.dialogs: list[str] = []
        page.on("console", lambda m: self.problems.append(f"console {m.type}: {m.text}")
                if m.type in ("error", "warning") else None)
        page.on("pageerror", lambda e: self.problems.append(f"page error: {e}"))
        page.on("requestfailed", lambda r: self.problems.append(f"request failed: {r.url} {r.failure}"))
        page.on("request", lambda r: self.requests.append(r.url))
        page.on("response", lambda r: self.problems.append(f"HTTP {r.status}: {r.url}")
                if r.status >= 400 and r.request.resource_type != "document" else None)

        def dismiss(dialog) -> None:
            self.dialogs.append(dialog.message)
            dialog.dismiss()

        page.on("dialog", dismiss)

    def open(self, path: str, *, shot: str | None = None, status: int = 200):
        response = self.page.goto(self.base + path)
        assert response is not None and response.status == status, (path, response and response.status)
        self.page.wait_for_load_state("networkidle")
        if status >= 400:  # the browser logs the document's own status; nothing else may fail
            self.problems = [p for p in self.problems if not p.startswith("console error: Failed to load resource")]
        if shot:
            self.shoot(shot)
        return response

    def shoot(self, name: str) -> None:
        ARTIFACTS.mkdir(exist_ok=True)
        self.page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)

    def clean(self) -> None:
        assert self.problems == [], self.problems
        assert self.dialogs == [], self.dialogs


def log_in(watched: Watched, token: str) -> None:
    watched.open("/login")
    watched.page.fill("input[name=token]", token)
    watched.page.click("form.stack-form button[type=submit]")
    watched.page.wait_for_load_state("networkidle")
