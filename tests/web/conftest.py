"""A live hub over the web test store (built once per test session, shared by xdist workers), and Chromium.

The store is built by :func:`tests.web.site.build` under a file lock in the session's shared temp
folder, then copied for each worker (sessions and forms write to it). Browser tests use Debian's
Chromium through Playwright; where Chromium is absent they are skipped, saying so.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from web_site import ADMIN_TOKEN, build

CHROMIUM = os.environ.get("FMHUB_TEST_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--headless", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
#: Screenshots of every page, for people to look at (gitignored).
ARTIFACTS = Path(__file__).parent / "artifacts"


@pytest.fixture(scope="session")
def web_home(tmp_path_factory: pytest.TempPathFactory, worker_id: str) -> Path:
    """This worker's copy of the web test store."""
    from filelock import FileLock

    shared = tmp_path_factory.getbasetemp() if worker_id == "master" else tmp_path_factory.getbasetemp().parent
    built = shared / "web-site"
    with FileLock(str(shared / "web-site.lock")):
        if not (built / "done").exists():
            shutil.rmtree(built, ignore_errors=True)
            build(built / "home")
            (built / "done").write_text("ok")
    mine = tmp_path_factory.mktemp("web-home")
    shutil.copytree(built / "home", mine, dirs_exist_ok=True)
    return mine


@pytest.fixture(scope="session")
def web_store(web_home: Path):
    from fmhub.store import open_store

    with open_store(f"sqlite:///{web_home / 'fmhub.db'}", (web_home / "blobs").as_uri()) as store:
        yield store


@pytest.fixture(scope="session")
def web_url(web_store) -> Iterator[str]:
    """A real uvicorn server of the hub app (API and pages) over the web test store."""
    from fmhub.serve._live import running
    from fmhub.server import HubConfig, create_app

    with running(create_app(web_store, HubConfig(admin_token=ADMIN_TOKEN)), ready_path=None) as url:
        yield url


@pytest.fixture(scope="session")
def browser():
    if not Path(CHROMIUM).exists():
        pytest.skip(f"Chromium is not installed at {CHROMIUM} (apt-get install chromium; .ci/run does it)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


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


@pytest.fixture
def visit(browser, web_url: str) -> Iterator[Watched]:
    """A fresh browser context (no cookies) on the live hub."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    watched = Watched(context.new_page(), web_url)
    yield watched
    context.close()


def log_in(watched: Watched, token: str) -> None:
    watched.open("/login")
    watched.page.fill("input[name=token]", token)
    watched.page.click("form.stack-form button[type=submit]")
    watched.page.wait_for_load_state("networkidle")
