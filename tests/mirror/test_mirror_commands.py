"""``fmhub mirror export|import``: exit codes (0 done, 1 conflicts left alone, 2 bad input), summaries, --json."""

from __future__ import annotations

import json
import tarfile
from pathlib import Path

import pytest
from _mirror_helpers import fill_source

from fmhub.cli import main
from fmhub.constants import settings
from fmhub.store import AddFile, open_store


@pytest.fixture
def homes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Two embedded hubs (FMHUB_HOME): ``a`` filled, ``b`` empty; the tests switch between them."""
    a, b = tmp_path / "a", tmp_path / "b"
    monkeypatch.setenv("FMHUB_HOME", str(a))
    settings.cache_clear()
    with open_store() as store:
        fill_source(store, tmp_path)

    def use(home: Path) -> None:
        monkeypatch.setenv("FMHUB_HOME", str(home))
        settings.cache_clear()

    return a, b, use


def test_export_then_import(homes, tmp_path: Path, capsys) -> None:
    a, b, use = homes
    bundle = tmp_path / "out.fmbundle"
    assert main(["mirror", "export", "acme/clf", "dataset/acme/news", "--to", str(bundle)]) == 0
    assert "sent" in capsys.readouterr().out
    use(b)
    assert main(["mirror", "import", str(bundle), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["commits_added"] > 0 and summary["records_added"]["runs"] == 1
    assert {(r["repo"], r["name"], r["outcome"]) for r in summary["refs"]} >= {("acme/clf", "main", "created"),
                                                                               ("acme/news", "v1", "created")}
    assert main(["fsck"]) == 0
    # Hub b says what it holds; hub a's next bundle, made --since that, carries no file.
    held = tmp_path / "held.json"
    assert main(["mirror", "manifest", "acme/clf", "dataset/acme/news", "--to", str(held)]) == 0
    use(a)
    again = tmp_path / "again.fmbundle"
    assert main(["mirror", "export", "acme/clf", "dataset/acme/news", "--since", str(held), "--to", str(again)]) == 0
    with tarfile.open(again) as tar:
        assert not [m for m in tar.getmembers() if m.name.startswith(("blobs/", "commits/", "trees/"))]


def test_conflict_exits_1_and_force_moves(homes, tmp_path: Path, capsys) -> None:
    a, b, use = homes
    bundle = tmp_path / "out.fmbundle"
    assert main(["mirror", "export", "acme/base", "--to", str(bundle)]) == 0
    use(b)
    assert main(["mirror", "import", str(bundle)]) == 0
    with open_store() as store:
        blob = store.put_bytes(b"local")
        store.commit("acme/base", [AddFile("local.txt", blob.sha256, blob.size)], title="local", author="bob")
    capsys.readouterr()
    assert main(["mirror", "import", str(bundle)]) == 1  # our branch is ahead: the older incoming head conflicts
    assert "conflict:" in capsys.readouterr().err
    assert main(["mirror", "import", str(bundle), "--force"]) == 0


def test_bad_input_exits_2_naming_the_problem(homes, tmp_path: Path, capsys) -> None:
    a, b, use = homes
    bundle = tmp_path / "out.fmbundle"
    assert main(["mirror", "export", "acme/clf", "--to", str(bundle)]) == 0
    with tarfile.open(bundle) as tar:
        member = next(m for m in tar.getmembers() if m.name.startswith("blobs/"))
    raw = bytearray(bundle.read_bytes())
    raw[member.offset_data] ^= 0xFF
    bundle.write_bytes(bytes(raw))
    use(b)
    capsys.readouterr()
    assert main(["mirror", "import", str(bundle)]) == 2
    assert f"bundle object {member.name} is corrupt" in capsys.readouterr().err
    assert main(["mirror", "import", str(tmp_path / "missing.fmbundle")]) == 2
    assert main(["mirror", "import", str(bundle), "--verify-signatures"]) == 2
    assert "--trust" in capsys.readouterr().err
    assert main(["mirror", "export", "acme/nothing", "--to", str(tmp_path / "x")]) == 2
    assert main(["mirror", "export", "acme/clf@", "--to", str(tmp_path / "x")]) == 2
    assert main(["mirror", "export", "acme/clf", "--to", str(tmp_path)]) == 2  # a folder
    assert main(["mirror", "export", "acme/clf", "--since", str(tmp_path / "nope"), "--to", str(tmp_path / "y")]) == 2
    assert main(["mirror", "pull", "acme/clf", "--from", "ftp://example"]) == 2
    with open_store() as store:  # hub b: nothing of the refused bundle is visible
        assert store.list_repos() == []
