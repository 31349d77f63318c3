"""The web UI over HTTP (no browser): URL shapes, access rules, bad input, security headers, forms."""

from __future__ import annotations

import re

import httpx
import pytest

from web_site import ADMIN_TOKEN, ALICE_READ_TOKEN, ALICE_TOKEN, BOB_TOKEN

HTML = {"Accept": "text/html"}


def get(url: str, path: str, **kwargs) -> httpx.Response:
    return httpx.get(url + path, headers={**HTML, **kwargs.pop("headers", {})}, follow_redirects=False, **kwargs)


def test_the_urls_huggingface_hub_prints_open_the_right_pages(web_url: str, hf_env_web) -> None:
    from huggingface_hub import HfApi

    api = HfApi(endpoint=web_url, token=ALICE_TOKEN)
    repo_url = api.create_repo("acme/printed", private=False)
    commit = api.upload_file(path_or_fileobj=b"hello", path_in_repo="notes/hello.txt", repo_id="acme/printed")
    data = api.create_repo("acme/printed-data", repo_type="dataset")
    for url, needle in ((str(repo_url), "<title>acme/printed · fmhub"), (commit.commit_url, "notes/hello.txt"),
                        (str(data), "<title>acme/printed-data · fmhub")):
        page = httpx.get(url, headers=HTML)
        assert page.status_code == 200 and "text/html" in page.headers["content-type"], url
        assert needle in page.text, (url, needle)
    blob = get(web_url, "/acme/printed/blob/main/notes/hello.txt")
    assert blob.status_code == 200 and "hello" in blob.text
    assert get(web_url, f"/acme/printed/tree/{commit.oid}/notes").status_code == 200
    # the API keeps its routes: resolve still answers bytes, repo info JSON
    assert httpx.get(f"{web_url}/acme/printed/resolve/main/notes/hello.txt").content == b"hello"
    assert httpx.get(f"{web_url}/api/models/acme/printed").json()["id"] == "acme/printed"


@pytest.fixture
def hf_env_web(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf-cache"))
    monkeypatch.setenv("HF_HUB_DISABLE_TELEMETRY", "1")
    monkeypatch.delenv("HF_TOKEN", raising=False)


PAGES = ["/", "/models", "/datasets?q=topics", "/?sort=metric:accuracy", "/tiny/topics-bert",
         "/tiny/topics-bert/tree/main", "/tiny/topics-bert/tree/main/eval", "/tiny/topics-bert/blob/main/config.json",
         "/tiny/topics-bert/blob/main/README.md", "/tiny/topics-bert/commits/main", "/tiny/topics-bert/refs",
         "/tiny/topics-bert/eval/main", "/tiny/topics-bert/eval/main/tiny/topics/test", "/tiny/topics-bert/runs",
         "/tiny/topics-bert-int8/eval/prod/tiny/topics/test", "/datasets/tiny/topics",
         "/datasets/tiny/topics/viewer", "/datasets/tiny/topics/viewer/default/test",
         "/datasets/tiny/topics/blob/main/quality.json", "/-/runs", "/-/leaderboards",
         "/-/leaderboards?dataset=tiny/topics&split=test", "/tiny", "/login",
         "/datasets/tiny/topics/viewer/default/train?p=3",
         "/-/compare/reports?card=tiny/topics-bert@main:tiny/topics/test&card=tiny/topics-bert-int8@prod:tiny/topics/test",
         "/tiny/topics-bert/lineage/main", "/datasets/tiny/topics/lineage/main", "/tiny/topics-bert-int8/lineage",
         "/tiny/topics-bert/lineage/main?direction=up&depth=2", "/?q=text-classification+transformers"]


@pytest.mark.parametrize("path", PAGES)
def test_pages_answer_html_with_strict_headers(web_url: str, path: str) -> None:
    page = get(web_url, path)
    assert page.status_code == 200, page.text[:2000]
    csp = page.headers["content-security-policy"]
    assert "script-src 'self';" in csp and "frame-ancestors 'none'" in csp and "unsafe-eval" not in csp
    assert page.headers["x-content-type-options"] == "nosniff" and page.headers["x-frame-options"] == "DENY"
    assert "<script>" not in page.text and not re.search(r"\son[a-z]+=", page.text), "inline script or handler"
    for src in re.findall(r'<script[^>]*src="([^"]+)"', page.text):
        assert src.startswith("/static/"), src  # every script from the hub itself


BAD = [("/nobody/nothing", 404), ("/tiny/topics-bert/tree/no-such-branch", 404),
       ("/tiny/topics-bert/blob/main/no/such/file.txt", 404), ("/tiny/topics-bert/commit/" + "0" * 40, 404),
       ("/tiny/topics-bert/blob/main/a/%2e%2e/%2e%2e/etc/passwd", 400), ("/tiny/topics-bert/eval/main/nope/nope/test", 404),
       ("/datasets/tiny/topics/viewer/default/nope", 404), ("/datasets/tiny/topics/viewer/default/test?p=999", 400),
       ("/-/runs/r-000000000000", 404), ("/-/runs?status=nope", 400), ("/tiny/topics-bert/commits/main?p=x", 400),
       ("/?sort=bogus", 400), ("/tiny/topics-bert/eval/main/tiny/topics/test?gold=nope", 400),
       ("/no/such/deep/path/at/all", 404), ("/-/compare/reports?card=x", 400), ("/nosuchaccount", 404),
       ("/tiny/topics-bert/tree/%00", 404), ("/tiny/topics-bert/blob/main/%ff%fe", 404), ("/%2e%2e/x", 400),
       ("/tiny/topics-bert/eval/main/a/b/c/d", 404), ("/datasets/tiny/topics/viewer/other/test", 404),
       ("/tiny/topics-bert/compare/main", 400), ("/tiny/topics-bert/commit/zz", 404), ("/?p=0", 400),
       ("/tiny/topics-bert/tree/main/%2e%2e", 400), ("/datasets/tiny/topics/viewer/default/test?revision=nope", 404),
       ("/-/runs/compare?run=x", 400), ("/-/leaderboards?dataset=tiny/topics&split=test&metric=zz", 400),
       ("/tiny/topics-bert/lineage/no-such-branch", 404), ("/tiny/topics-bert/lineage/main?direction=sideways", 400),
       ("/tiny/topics-bert/lineage/main?depth=0", 400), ("/nobody/nothing/lineage", 404)]


@pytest.mark.parametrize(("path", "status"), BAD)
def test_bad_addresses_are_html_error_pages_not_500(web_url: str, path: str, status: int) -> None:
    page = get(web_url, path)
    assert page.status_code == status, (path, page.status_code, page.text[:500])
    assert "text/html" in page.headers["content-type"] and "Traceback" not in page.text


def test_api_clients_still_get_json_errors(web_url: str) -> None:
    answer = httpx.get(f"{web_url}/no/such/deep/path/at/all")
    assert answer.status_code == 404 and answer.json()["error"] == "Not Found" and answer.json()["hint"]


def _same_as_missing(web_url: str, path: str, missing: str, headers: dict[str, str]) -> None:
    with httpx.Client(base_url=web_url, headers={**HTML, **headers}) as browser:  # keeps cookies, as a browser does
        browser.get("/login")
        private, absent = browser.get(path), browser.get(missing)
    assert private.status_code == absent.status_code == 404
    assert private.text == absent.text.replace("nothing-here", "secret-model")


@pytest.mark.parametrize("suffix", ["", "/tree/main", "/blob/main/README.md", "/commits/main", "/refs", "/eval/main",
                                    "/runs", "/lineage/main"])
def test_private_repos_answer_exactly_as_missing_ones(web_url: str, suffix: str) -> None:
    for headers in ({}, {"Authorization": f"Bearer {BOB_TOKEN}"}):  # anonymous; bob is not in acme
        _same_as_missing(web_url, f"/acme/secret-model{suffix}", f"/acme/nothing-here{suffix}", headers)
    shown = get(web_url, f"/acme/secret-model{suffix}", headers={"Authorization": f"Bearer {ALICE_READ_TOKEN}"})
    assert shown.status_code == 200


def test_lists_show_private_repos_only_to_those_who_may_read_them(web_url: str) -> None:
    for path in ("/", "/models?q=secret", "/acme"):
        assert "acme/secret-model" not in get(web_url, path).text, path
        assert "acme/secret-model" in get(web_url, path, headers={"Authorization": f"Bearer {ALICE_TOKEN}"}).text


def _form(client: httpx.Client, path: str) -> str:
    page = client.get(path, headers=HTML)
    return re.search(r'name="csrf" value="([0-9a-f]+)"', page.text).group(1)


def test_log_in_session_cookie_csrf_and_log_out(web_url: str) -> None:
    with httpx.Client(base_url=web_url, follow_redirects=False) as client:
        csrf = _form(client, "/login")
        bad = client.post("/login", data={"token": "fmhub_wrong", "csrf": csrf, "next": "/"})
        assert bad.status_code == 401 and "invalid or expired token" in bad.text
        assert client.post("/login", data={"token": ADMIN_TOKEN, "csrf": "0" * 64}).status_code == 403  # bad CSRF
        good = client.post("/login", data={"token": ADMIN_TOKEN, "csrf": csrf, "next": "//evil.example/x"})
        assert good.status_code == 303 and good.headers["location"] == "/"  # never an open redirect
        cookie = good.headers["set-cookie"]
        assert "HttpOnly" in cookie and "SameSite=lax" in cookie and ADMIN_TOKEN not in cookie
        assert "admin" in client.get("/settings/tokens").text
        # another site's form is refused even with the right field
        csrf = _form(client, "/settings/tokens")
        refused = client.post("/settings/tokens", data={"csrf": csrf, "name": "x"},
                              headers={"Origin": "https://evil.example"})
        assert refused.status_code == 403
        created = client.post("/settings/tokens", data={"csrf": csrf, "name": "from-the-web", "role": "read",
                                                        "expires": "7d"})
        secret = re.search(r'id="new-token">(fmhub_[^<]+)<', created.text).group(1)
        assert httpx.get(f"{web_url}/api/whoami-v2", headers={"Authorization": f"Bearer {secret}"}).json()["name"] \
            == "admin"
        assert client.get("/settings/audit").status_code == 200
        csrf = _form(client, "/settings/tokens")
        assert client.post("/logout", data={"csrf": csrf}).status_code == 303
        # the session token is revoked server-side: the old cookie no longer logs in
        stale = httpx.get(f"{web_url}/settings/tokens", cookies={"fmhub_session": cookie.split(";")[0].split("=", 1)[1]},
                          follow_redirects=False)
        assert stale.status_code == 303 and stale.headers["location"].startswith("/login")


def test_account_pages_follow_the_api_rules(web_url: str) -> None:
    with httpx.Client(base_url=web_url, follow_redirects=False,
                      headers={"Authorization": f"Bearer {ALICE_READ_TOKEN}"}) as reader:
        assert reader.get("/settings/audit").status_code == 403  # not a site administrator
        csrf = _form(reader, "/settings/tokens")
        refused = reader.post("/settings/tokens", data={"csrf": csrf, "name": "x", "role": "write", "expires": "7d"})
        assert refused.status_code == 403 and "write token" in refused.text  # a read token mints nothing
        assert reader.get("/settings/organizations/acme").status_code == 200
    with httpx.Client(base_url=web_url, follow_redirects=False,
                      headers={"Authorization": f"Bearer {BOB_TOKEN}"}) as bob:
        assert bob.get("/settings/organizations/acme").status_code == 403  # not a member
        csrf = _form(bob, "/settings/organizations")
        assert bob.post("/settings/organizations/acme/members",
                        data={"csrf": csrf, "user": "bob", "role": "admin"}).status_code == 403
    with httpx.Client(base_url=web_url, follow_redirects=False,
                      headers={"Authorization": f"Bearer {ALICE_TOKEN}"}) as alice:
        csrf = _form(alice, "/settings/organizations/acme")
        assert alice.post("/settings/organizations/acme/members",
                          data={"csrf": csrf, "user": "bob", "role": "read"}).status_code == 303
        try:
            assert "bob" in alice.get("/settings/organizations/acme").text
            assert get(web_url, "/acme/secret-model", headers={"Authorization": f"Bearer {BOB_TOKEN}"}
                       ).status_code == 200  # now a reader of acme
        finally:  # other tests rely on bob being outside acme
            assert alice.post("/settings/organizations/acme/members",
                              data={"csrf": csrf, "user": "bob", "action": "remove"}).status_code == 303
        assert get(web_url, "/acme/secret-model", headers={"Authorization": f"Bearer {BOB_TOKEN}"}).status_code == 404


def test_require_auth_sends_browsers_to_log_in(web_store) -> None:
    from fmhub.serve._live import running
    from fmhub.server import HubConfig, create_app

    with running(create_app(web_store, HubConfig(require_auth=True, admin_token=ADMIN_TOKEN)), ready_path=None) as url:
        page = httpx.get(f"{url}/tiny/topics-bert", headers=HTML)
        assert page.status_code == 303 and page.headers["location"] == "/login?next=%2Ftiny%2Ftopics-bert"
        assert httpx.get(f"{url}/login").status_code == 200 and httpx.get(f"{url}/static/app.css").status_code == 200
        assert httpx.get(f"{url}/tiny/topics-bert", headers={**HTML, "Authorization": f"Bearer {BOB_TOKEN}"}
                         ).status_code == 200


def test_static_files_and_plotly_are_served_by_the_hub(web_url: str) -> None:
    import plotly

    script = httpx.get(f"{web_url}/static/vendor/plotly-{plotly.__version__}.min.js")
    assert script.status_code == 200 and script.headers["content-type"].startswith("text/javascript")
    assert b"plotly.js" in script.content[:200]
    assert httpx.get(f"{web_url}/static/app.js").headers["x-content-type-options"] == "nosniff"


def test_the_dataset_viewer_pages_through_the_split_in_order(web_url: str, web_store) -> None:
    import io

    import pyarrow.parquet as pq

    files = [e for e in web_store.list_files("tiny/topics", repo_type="dataset") if e.path.startswith("data/train-")]
    texts = [t for e in files for t in pq.read_table(io.BytesIO(web_store.read_bytes(
        "tiny/topics", e.path, repo_type="dataset"))).column("text").to_pylist()]
    shown = []
    for page in (1, 2, 3):
        html = get(web_url, f"/datasets/tiny/topics/viewer/default/train?p={page}").text
        shown += [re.sub(r"<[^>]+>", "", cell).strip() for cell in re.findall(r'<td class="text-cell">(.*?)</td>', html)]
    import html as html_lib

    assert [html_lib.unescape(t) for t in shown] == texts and len(texts) == 112


def test_comparing_two_picked_commits_redirects_to_the_compare_page(web_url: str, web_store) -> None:
    history = web_store.list_commits("tiny/topics-bert")
    answer = get(web_url, f"/tiny/topics-bert/compare?a={history[-1].oid}&b={history[0].oid}")
    assert answer.status_code == 303 and answer.headers["location"].endswith(f"{history[-1].oid}...{history[0].oid}")
    page = get(web_url, answer.headers["location"])
    assert page.status_code == 200 and "config.json" in page.text and "added" in page.text


def test_runs_of_private_repos_answer_as_missing_ones(web_url: str, web_home) -> None:
    run_id = (web_home / "secret-run.txt").read_text()
    missing = "r-" + ("0" if run_id[2] != "0" else "1") * 12
    for headers in ({}, {"Authorization": f"Bearer {BOB_TOKEN}"}):
        assert run_id not in get(web_url, "/-/runs", headers=headers).text
        with httpx.Client(base_url=web_url, headers={**HTML, **headers}) as browser:
            browser.get("/login")
            hidden, absent = browser.get(f"/-/runs/{run_id}"), browser.get(f"/-/runs/{missing}")
        assert hidden.status_code == absent.status_code == 404
        assert hidden.text == absent.text.replace(missing, run_id)
    alice = {"Authorization": f"Bearer {ALICE_READ_TOKEN}"}
    assert run_id in get(web_url, "/-/runs", headers=alice).text
    assert get(web_url, f"/-/runs/{run_id}", headers=alice).status_code == 200


def test_pull_request_pages(web_url: str, hf_env_web) -> None:
    """Issue 28: a pull request on the repo page: its files, diff, conflicts and timeline; private repos' pull
    requests are hidden like the repos."""
    from huggingface_hub import CommitOperationAdd, HfApi

    api = HfApi(endpoint=web_url, token=ALICE_TOKEN)
    api.create_repo("acme/reviewed")
    api.upload_file(path_or_fileobj=b"one\n", path_in_repo="notes.txt", repo_id="acme/reviewed")
    pr = api.create_commit("acme/reviewed", [CommitOperationAdd("notes.txt", b"two\n"),
                                             CommitOperationAdd("new.txt", b"<b>new</b>\n")],
                           commit_message="Second version <script>", create_pr=True)
    api.comment_discussion("acme/reviewed", pr.pr_num, "Please check **this**")
    api.upload_file(path_or_fileobj=b"main moved\n", path_in_repo="notes.txt", repo_id="acme/reviewed")
    listing = get(web_url, "/acme/reviewed/discussions")
    assert listing.status_code == 200 and "Second version &lt;script&gt;" in listing.text and "open" in listing.text
    page = get(web_url, f"/acme/reviewed/discussions/{pr.pr_num}")
    assert page.status_code == 200
    assert "refs/pr/1" in page.text and "new.txt" in page.text and "modified" in page.text
    assert "-one" in page.text and "+two" in page.text and "&lt;b&gt;new&lt;/b&gt;" in page.text  # escaped diff
    assert "Conflicts with main: notes.txt" in page.text and "Please check **this**" in page.text
    assert "<script>" not in page.text.split("<body", 1)[1].replace('<script src=', '')  # titles are escaped
    assert get(web_url, "/acme/reviewed/discussions/99").status_code == 404
    assert get(web_url, "/acme/secret-model/discussions").status_code == 404  # private: like a missing repo


def test_the_lineage_tab_pages_its_impact_table_and_shows_the_serve_check(web_url: str,
                                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    from fmhub.server.web import _lineage_pages

    monkeypatch.setattr(_lineage_pages, "IMPACT_TAB_PAGE", 2)
    first = get(web_url, "/datasets/tiny/topics/lineage/main?depth=2")
    assert first.status_code == 200
    shown = re.search(r"Showing (\d+) of (\d+)", first.text)
    assert shown and shown.group(1) == "2" and int(shown.group(2)) > 2
    link = re.search(r'href="([^"]+)" rel="next" data-role="impact-next"', first.text)
    assert link and "impact_cursor=" in link.group(1) and "depth=2" in link.group(1)  # keeps the page's options
    second = get(web_url, link.group(1).replace("&amp;", "&"))
    assert second.status_code == 200 and "first page" in second.text
    rows = lambda page: re.findall(r"<tr><td>(\w[\w-]*)</td>", page.split('data-role="impact"')[1])  # noqa: E731
    assert rows(first.text) and rows(second.text)
    assert get(web_url, "/datasets/tiny/topics/lineage/main?impact_cursor=nope").status_code == 400
    variant = get(web_url, "/tiny/topics-bert-int8/lineage/prod")  # the pipeline's serve-check step served prod
    assert variant.status_code == 200 and "serve-check" in variant.text
    assert "% as offline on 16 rows" in variant.text
