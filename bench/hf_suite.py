"""Run huggingface_hub's own test suite against a live fmhub server, and count what passes per file.

The suite's files come from the PyPI source distribution of the installed ``huggingface_hub`` (fetched at run
time with ``pip download``, cached under ``--work``; never committed). The sdist lacks the suite's
``conftest.py`` and points at the Hub's CI server, so this script:

1. starts ``fmhub server`` (1 worker, a fresh ``FMHUB_HOME``: SQLite + ``file://`` blobs) on a loopback port;
2. creates the suite's accounts with fmhub's CLI: the user and the "other" user with write tokens, the
   organization ``valid_org_hub`` the user belongs to;
3. rewrites ``tests/testing_constants.py`` so the staging endpoint, users and tokens are fmhub's, and writes
   a ``conftest.py`` with the fixtures the tests use (``repo_factory``, ``api``, markers);
4. runs pytest over the files that talk to a Hub (``--files`` to choose), with a JUnit report, and
   classifies every test: passed / failed / error / skipped (with reason), and whether it exercises a
   feature only the SaaS Hub has (Spaces, gated repos, collections, likes, webhooks, inference, jobs,
   buckets, billing, …; see ``SAAS_ONLY``) or needs huggingface.co itself (``production`` marker).

The figure the issue asks for is ``passed / (passed + failed + error)`` over tests that are neither SaaS-only
nor production-only. Results print as a table and go to ``bench/results/hf_suite-<time>.json``.
Never run by the test suite.

Usage:
    .venv/bin/python bench/hf_suite.py                                # the default files
    .venv/bin/python bench/hf_suite.py --files test_hf_api.py -k "Commit"   # one file, some tests
"""

from __future__ import annotations

import argparse
import json
import re
import secrets
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import xml.etree.ElementTree as ET
from collections import Counter, defaultdict
from datetime import UTC, datetime
from pathlib import Path

from _hub_services import VENV_BIN, start_hub  # same folder: the server process

REPO_ROOT = Path(__file__).resolve().parent.parent
RESULTS_DIR = REPO_ROOT / "bench" / "results"

#: Files of the suite that talk to a Hub server (the rest test the client alone: parsing, CLI output, caches).
#: test_hub_mixin.py is left out: it imports jedi, which is no dependency of fmhub (add it with --files).
DEFAULT_FILES = (
    "test_hf_api.py", "test_file_download.py", "test_snapshot_download.py", "test_hf_file_system.py",
    "test_repocard.py", "test_commit_api.py", "test_upload_pipeline.py", "test_cache_layout.py",
    "test_copy_files.py", "test_xet_upload.py", "test_xet_download.py",
    "test_hub_mixin_pytorch.py", "test_commit_scheduler.py", "test_cli_discussions.py", "test_auth.py",
    "test_lfs.py", "test_shared_blobs.py", "test_tree_cache.py",
)

#: Test ids (regular expressions searched in the pytest node id) of features only the SaaS Hub has; they are
#: run and reported, but left out of the conformance figure.
SAAS_ONLY = {
    "Spaces (hardware, secrets, variables, runtime, duplication)": r"(?i)space",
    "gated repos and access requests": r"(?i)gated|access_request|AccessRequest|test_update_(dataset_)?repo_settings$",
    "collections": r"(?i)collection",
    "likes": r"(?i)\blike|_like|likers|Likes",
    "webhooks": r"(?i)webhook",
    "inference endpoints and providers": r"(?i)inference|endpoint_info|text_generation",
    "jobs and scheduled jobs": r"(?i)\bjob|_job|Jobs",
    "buckets": r"(?i)bucket",
    "billing, organizations' enterprise features": r"(?i)enterprise|billing|resource_group|ResourceGroup|"
                                                   r"private_by_default",
    "papers, daily papers": r"(?i)paper",
    "user and organization overviews, followers": r"(?i)overview|follower|following|list_organization_members",
    "trending, models' downloads and eval results on the Hub": r"(?i)trending|eval_result|safetensors_metadata",
    "dataset viewer, parquet conversion (datasets-server)": r"(?i)parquet_files|list_datasets_parquet",
    "kernels, MCP servers, sandbox": r"(?i)kernel|mcp|sandbox",
    "scans of uploaded files (malware, pickle imports)": r"(?i)security_status|scan",
    "repo usage statistics (downloads, storage quota)": r"(?i)storage_usage|downloads_all_time",
    "Discussions' moderation (hide comments, pin)": r"(?i)hide_discussion_comment",
}


def _run(command: list[str], env: dict[str, str], **kwargs) -> str:
    done = subprocess.run(command, env=env, capture_output=True, text=True, **kwargs)
    if done.returncode != 0:
        sys.exit(f"{' '.join(command)} failed ({done.returncode}):\n{done.stdout[-2000:]}{done.stderr[-2000:]}")
    return done.stdout


def fetch_suite(work: Path) -> Path:
    """The installed huggingface_hub's sdist, unpacked; its ``tests/`` folder is the suite."""
    import huggingface_hub

    version = huggingface_hub.__version__
    unpacked = work / f"huggingface_hub-{version}"
    if not (unpacked / "tests").is_dir():
        archive_dir = work / "sdist"
        archive_dir.mkdir(parents=True, exist_ok=True)
        _run([sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:", "--dest",
              str(archive_dir), f"huggingface_hub=={version}"], env=dict(__import__("os").environ))
        [archive] = archive_dir.glob(f"huggingface_hub-{version}.tar.gz")
        with tarfile.open(archive) as tar:
            tar.extractall(work, filter="data")
    return unpacked


CONFTEST = '''"""Fixtures of huggingface_hub's suite, written by fmhub's bench/hf_suite.py (the sdist has no conftest)."""
import os
from pathlib import Path

import pytest
from huggingface_hub import HfApi

from .testing_constants import ENDPOINT_STAGING, TOKEN
from .testing_utils import repo_name


def pytest_collection_modifyitems(config, items):
    xet = False
    try:
        import hf_xet  # noqa: F401
        xet = True
    except ImportError:
        pass
    for item in items:
        if item.get_closest_marker("production"):
            item.add_marker(pytest.mark.skip(reason="production: needs huggingface.co (no internet here)"))
        if item.get_closest_marker("no_xet") and xet:
            item.add_marker(pytest.mark.skip(reason="no_xet: hf_xet is installed"))
        if item.get_closest_marker("xet") and not xet:
            item.add_marker(pytest.mark.skip(reason="xet: hf_xet is not installed"))
        if item.get_closest_marker("git_lfs") and not os.environ.get("RUN_GIT_LFS_TESTS"):
            item.add_marker(pytest.mark.skip(reason="git_lfs: RUN_GIT_LFS_TESTS not set"))


@pytest.fixture(scope="session")
def api() -> HfApi:
    return HfApi(endpoint=ENDPOINT_STAGING, token=TOKEN)


@pytest.fixture
def new_repo_id(api):
    from .testing_constants import USER

    repo_id = f"{USER}/{repo_name()}"
    yield repo_id
    api.delete_repo(repo_id, missing_ok=True)


@pytest.fixture
def api_prod():
    pytest.skip("production: needs huggingface.co (no internet here)")


@pytest.fixture
def fx_cache_dir(request, tmp_path):
    request.cls.cache_dir = tmp_path.resolve()
    yield


@pytest.fixture
def cache_dir(tmp_path) -> Path:
    return tmp_path / "cache"


class RepoFactory:
    """``repo_factory(repo_type="model", repo_id=None, token=None, **create_repo_kwargs)`` -> RepoUrl; every
    repo made is deleted after the test."""

    def __init__(self) -> None:
        self.created = []

    def __call__(self, repo_type: str = "model", repo_id: str | None = None, token: str | None = None, **kwargs):
        client = HfApi(endpoint=ENDPOINT_STAGING, token=token or TOKEN)
        url = client.create_repo(repo_id or repo_name(), repo_type=repo_type, **kwargs)
        self.created.append((client, url.repo_id, repo_type))
        return url


@pytest.fixture
def repo_factory():
    factory = RepoFactory()
    yield factory
    for client, repo_id, repo_type in factory.created:
        try:
            client.delete_repo(repo_id, repo_type=repo_type, missing_ok=True)
        except Exception:
            pass
'''

PYTEST_INI = """[pytest]
markers =
    api: tests that do not depend on Xet
    transfer: upload/download tests
    inference: inference tests
    xet: needs hf_xet
    no_xet: must run without hf_xet
    production: runs against huggingface.co
    deprecated: expects a FutureWarning
    git_lfs: needs git-lfs
    vcr: recorded HTTP cassettes (pytest-vcr)
"""


def prepare(suite: Path, url: str, accounts: dict[str, str]) -> None:
    tests = suite / "tests"
    constants = (tests / "testing_constants.py").read_text()
    replacements = {
        "USER": accounts["user"], "FULL_NAME": "Dummy User", "TOKEN": accounts["token"],
        "OTHER_USER": accounts["other"], "OTHER_TOKEN": accounts["other_token"],
        "ENTERPRISE_USER": accounts["user"], "ENTERPRISE_ORG": accounts["org"],
        "ENTERPRISE_TOKEN": accounts["token"], "ENDPOINT_STAGING": url,
    }
    for name, value in replacements.items():
        constants, count = re.subn(rf"^{name} = .*$", f"{name} = {value!r}", constants, flags=re.M)
        if count != 1:
            sys.exit(f"testing_constants.py has no single {name} = …: the suite changed; update hf_suite.py")
    (tests / "testing_constants.py").write_text(constants)
    (tests / "conftest.py").write_text(CONFTEST)
    (tests / "__init__.py").touch()  # the suite imports its helpers relatively (from .testing_utils import …)
    (suite / "pytest.ini").write_text(PYTEST_INI)  # instead of the sdist's: no -Werror, no -sv


def make_accounts(home: Path, env: dict[str, str]) -> dict[str, str]:
    fmhub = [str(VENV_BIN / "fmhub")] if (VENV_BIN / "fmhub").exists() else [sys.executable, "-m", "fmhub.cli"]
    cli_env = {**env, "FMHUB_HOME": str(home)}
    accounts = {"user": "hubuser", "other": "dvuser", "org": "valid_org_hub"}
    _run(fmhub + ["user", "create", accounts["user"], "--fullname", "Dummy User"], cli_env)
    _run(fmhub + ["user", "create", accounts["other"], "--fullname", "Other User"], cli_env)
    _run(fmhub + ["org", "create", accounts["org"], "--owner", accounts["user"], "--fullname", "Dummy Hub Org"],
         cli_env)
    for key, user in (("token", accounts["user"]), ("other_token", accounts["other"])):
        out = _run(fmhub + ["token", "create", "--user", user, "--name", "hf-suite", "--role", "write"], cli_env)
        accounts[key] = next(line.strip() for line in out.splitlines() if line.strip().startswith("fmhub_"))
    return accounts



#: Failures whose message shows the test needs a SaaS-only route in its setup (a bucket, a like), whatever its name.
SAAS_ROUTES = {"buckets": r"/api/buckets", "likes": r"/like\b", "Spaces": r"/api/spaces"}
#: Tests that cannot run from the sdist: it lacks the suite's data files (tests/fixtures/).
UNRUNNABLE = r"tests/fixtures/|No module named"
#: Client-side tests that assume the Hub's token format: OAuth refresh only applies to "hf_" tokens, and the
#: suite's TOKEN is an fmhub token here (no server involved); shown apart, with the tests that cannot run.
TOKEN_FORMAT = r"TestGetTokenAutoRefresh"
#: Failures caused by fmhub's refusal of pickle files (by content since issue 29; by name before it): counted as
#: failures here, and shown apart.
PICKLE = r"is a pickle-based file"


def saas_reason(nodeid: str, detail: str = "") -> str | None:
    for reason, pattern in SAAS_ONLY.items():
        if re.search(pattern, nodeid):
            return reason
    for reason, pattern in SAAS_ROUTES.items():
        if re.search(pattern, detail):
            return reason
    return None


def parse_junit(path: Path) -> list[dict]:
    results = []
    for case in ET.parse(path).getroot().iter("testcase"):
        classname, name = case.get("classname", ""), case.get("name", "")
        module = classname.split(".")[1] + ".py" if classname.startswith("tests.") else classname
        outcome, detail = "passed", ""
        for child in case:
            if child.tag in ("failure", "error", "skipped"):
                outcome = {"failure": "failed", "error": "error", "skipped": "skipped"}[child.tag]
                detail = (child.get("message") or "")[:300]
                break
        nodeid = f"{classname}::{name}"
        production = outcome == "skipped" and "production" in detail
        failed = outcome in ("failed", "error")
        results.append({"file": module, "id": nodeid, "outcome": outcome, "detail": detail,
                        "saas": saas_reason(nodeid, detail if failed else ""), "production": production,
                        "unrunnable": failed and bool(re.search(UNRUNNABLE, detail) or re.search(TOKEN_FORMAT, nodeid)),
                        "pickle": failed and bool(re.search(PICKLE, detail))})
    return results


def summarize(results: list[dict]) -> dict:
    per_file: dict[str, Counter] = defaultdict(Counter)
    for r in results:
        counts = per_file[r["file"]]
        if r["saas"]:
            counts["saas_" + r["outcome"]] += 1
        elif r["production"]:
            counts["production"] += 1
        elif r["unrunnable"]:
            counts["unrunnable"] += 1
        else:
            counts[r["outcome"]] += 1
            counts["pickle"] += r["pickle"]
    total = Counter()
    for counts in per_file.values():
        total.update(counts)
    ran = total["passed"] + total["failed"] + total["error"]
    return {"per_file": {f: dict(c) for f, c in sorted(per_file.items())}, "total": dict(total),
            "ran": ran, "pass_rate": total["passed"] / ran if ran else None}


def print_table(summary: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="huggingface_hub's suite against fmhub (SaaS-only and production tests apart)")
    for column in ("file", "passed", "failed", "error", "skipped", "rate", "of which pickle", "SaaS-only (pass/ran)",
                   "production", "cannot run here"):
        table.add_column(column, justify="left" if column == "file" else "right")
    for name, c in summary["per_file"].items():
        ran = c.get("passed", 0) + c.get("failed", 0) + c.get("error", 0)
        saas_ran = c.get("saas_passed", 0) + c.get("saas_failed", 0) + c.get("saas_error", 0)
        table.add_row(name, str(c.get("passed", 0)), str(c.get("failed", 0)), str(c.get("error", 0)),
                      str(c.get("skipped", 0)), f"{c.get('passed', 0) / ran:.0%}" if ran else "-",
                      str(c.get("pickle", 0)), f"{c.get('saas_passed', 0)}/{saas_ran}", str(c.get("production", 0)),
                      str(c.get("unrunnable", 0)))
    t = summary["total"]
    table.add_row("[b]total", str(t.get("passed", 0)), str(t.get("failed", 0)), str(t.get("error", 0)),
                  str(t.get("skipped", 0)), f"[b]{summary['pass_rate']:.1%}" if summary["ran"] else "-",
                  str(t.get("pickle", 0)), "", str(t.get("production", 0)), str(t.get("unrunnable", 0)))
    Console(width=160).print(table)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--files", nargs="+", default=list(DEFAULT_FILES), help="test files of the suite to run")
    parser.add_argument("-k", dest="keyword", help="pytest -k expression (a subset of tests)")
    parser.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "fmhub-hf-suite",
                        help="where the sdist is cached and the run's files are written")
    parser.add_argument("--timeout", type=int, default=3600, help="seconds for the whole pytest run")
    parser.add_argument("--keep", action="store_true", help="keep the server's FMHUB_HOME afterwards")
    parser.add_argument("--allow-pickle", action="store_true",
                        help="serve with --allow-pickle (pickle files accepted, reported unsafe): shows what fmhub's "
                             "refusal of pickle contents costs the suite")
    args = parser.parse_args()

    args.work.mkdir(parents=True, exist_ok=True)
    pristine = fetch_suite(args.work)
    run_dir = Path(tempfile.mkdtemp(prefix="run-", dir=args.work))
    suite = run_dir / "suite"
    shutil.copytree(pristine, suite)
    home, logs = run_dir / "fmhub-home", run_dir / "logs"
    logs.mkdir()
    admin_token = "fmhub_" + secrets.token_urlsafe(24)
    env = {k: v for k, v in __import__("os").environ.items() if not k.startswith(("FMHUB_", "HF_"))}
    accounts = make_accounts(home, env)
    hub = start_hub(home, admin_token, 1, logs, extra_args=("--allow-pickle",) if args.allow_pickle else ())
    try:
        hub.wait_ready("/readyz")
        prepare(suite, hub.base_url, accounts)
        junit = run_dir / "junit.xml"
        pytest_env = {**env, "HF_ENDPOINT": hub.base_url, "HF_HOME": str(run_dir / "hf-home"), "HF_TOKEN": "",
                      "HUGGING_FACE_HUB_TOKEN": "", "HF_HUB_DISABLE_TELEMETRY": "1",
                      "DISABLE_SYMLINKS_IN_WINDOWS_TESTS": "1", "PYTHONPATH": str(suite)}
        command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:xdist",
                   "--junitxml", str(junit), "-o", "junit_family=xunit1", "--continue-on-collection-errors", "--rootdir", str(suite),
                   *[f"tests/{name}" for name in args.files]]
        if args.keyword:
            command += ["-k", args.keyword]
        print(f"running {len(args.files)} files of huggingface_hub's suite against {hub.base_url} (logs: {run_dir})")
        started = time.monotonic()
        with open(logs / "pytest.log", "w") as out:
            subprocess.run(command, cwd=suite, env=pytest_env, stdout=out, stderr=subprocess.STDOUT,
                           timeout=args.timeout)
        seconds = time.monotonic() - started
    finally:
        hub.stop()
    results = parse_junit(junit)
    summary = summarize(results)
    print_table(summary)
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    out_path = RESULTS_DIR / f"hf_suite-{datetime.now(UTC).strftime('%Y%m%dT%H%M%SZ')}.json"
    import huggingface_hub

    out_path.write_text(json.dumps({
        "command": " ".join(sys.argv), "huggingface_hub": huggingface_hub.__version__, "seconds": round(seconds),
        "allow_pickle": args.allow_pickle,
        "files": args.files, "keyword": args.keyword, "summary": summary, "saas_only": SAAS_ONLY,
        "results": results}, indent=1))
    print(f"pass rate (not SaaS-only, not production): {summary['pass_rate']:.1%} of {summary['ran']} tests; "
          f"{seconds:.0f} s; details in {out_path}")
    if not args.keep:
        shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    main()
