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

from browsing import Watched
from web_site import ADMIN_TOKEN, build

CHROMIUM = os.environ.get("FMHUB_TEST_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--headless", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]


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


@pytest.fixture
def visit(browser, web_url: str) -> Iterator[Watched]:
    """A fresh browser context (no cookies) on the live hub."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    watched = Watched(context.new_page(), web_url)
    yield watched
    context.close()
