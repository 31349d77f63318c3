"""The command line starts without what a command does not use: ``fmhub verify --help`` and ``fmhub --version``
import neither the ML stack, the server, the store nor Sigstore's client, signing or verifying a folder loads
no database layer, and ``fmhub verify REPO`` on the embedded store loads the store and signing only (no runs,
evaluations, search, cards, HTTP client). Checked by module, in a fresh interpreter (no timing: what is imported
is what costs)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import typer

import fmhub.cli
from fmhub.cli import COMMAND_MODULES

SRC = Path(fmhub.cli.__file__).parents[2]

#: Never needed to parse a command line or sign a folder.
HEAVY = ("torch", "transformers", "datasets", "fastapi", "uvicorn", "sqlalchemy", "huggingface_hub", "numpy",
         "pyarrow", "model_signing", "sigstore", "fmhub.client", "fmhub.store", "fmhub.train", "fmhub.server")


#: Not needed by ``fmhub verify REPO`` on the embedded store: the other domains of the hub (whose tables and write
#: hooks a write loads), the HTTP client of a remote hub, YAML cards, PostgreSQL's dialect, progress bars.
NOT_FOR_VERIFY = ("torch", "transformers", "datasets", "fastapi", "uvicorn", "huggingface_hub", "numpy", "pyarrow",
                  "model_signing", "sigstore", "fmhub.train", "fmhub.server", "fmhub.evaluations", "fmhub.runs",
                  "fmhub.search", "fmhub.lineage", "fmhub.cards", "fmhub.accounts", "fmhub.xet", "fmhub.client._remote",
                  "httpx", "yaml", "alembic", "sqlalchemy.dialects.postgresql", "rich.progress")


def _imported(code: str, *argv: str, watched: tuple[str, ...] = HEAVY, env: dict[str, str] | None = None
              ) -> set[str]:
    """The modules of ``watched`` that ``code`` (run in a fresh interpreter, ``argv`` as sys.argv[1:]) imported."""
    probe = code + f"\nimport json, sys\nprint(json.dumps([m for m in {watched!r} if m in sys.modules]))\n"
    env = {**os.environ, **(env or {}), "PYTHONPATH": os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")])}
    out = subprocess.run([sys.executable, "-c", probe, *argv], env=env, capture_output=True, text=True, check=True,
                         timeout=120).stdout
    return set(json.loads(out.strip().splitlines()[-1]))


def test_verify_help_imports_no_heavy_module() -> None:
    code = ("from fmhub.cli import main\n"
            "import contextlib, io\n"
            "with contextlib.redirect_stdout(io.StringIO()):\n"
            "    assert main(['verify', '--help']) == 0\n"
            "with contextlib.redirect_stdout(io.StringIO()):\n"
            "    assert main(['sign', '--help']) == 0\n")
    assert _imported(code) == set()


def test_version_imports_no_command_module() -> None:
    code = ("from fmhub.cli import main\n"
            "import contextlib, io, sys\n"
            "with contextlib.redirect_stdout(io.StringIO()) as out:\n"
            "    assert main(['--version']) == 0\n"
            "assert out.getvalue().startswith('fmhub '), out.getvalue()\n"
            "loaded = [m for m in sys.modules if m.startswith('fmhub.cli._') and m.endswith('_commands')]\n"
            "assert not loaded, loaded\n")
    assert _imported(code) == set()


def test_signing_and_verifying_a_folder_needs_no_store_nor_sigstore(tmp_path: Path) -> None:
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "weights.bin").write_bytes(os.urandom(4096))
    (folder / "config.json").write_text("{}")
    code = ("import sys\nfrom pathlib import Path\n"
            "from fmhub.signing import TrustedKey, create_key_pair, sign_folder, verify_folder\n"
            "folder, keys = Path(sys.argv[1]), Path(sys.argv[2])\n"
            "pair = create_key_pair(keys / 'k.key')\n"
            "sig = sign_folder(folder, pair.private_path)\n"
            "signed = verify_folder(folder, [TrustedKey.from_pem(pair.public_path.read_bytes())], signature=sig)\n"
            "assert set(signed.files) == {'weights.bin', 'config.json'}, signed.files\n")
    assert _imported(code, str(folder), str(tmp_path)) == set()


def test_sign_and_verify_on_the_embedded_store_load_only_what_they_use(tmp_path: Path) -> None:
    """``fmhub verify`` of a signed version reads the store, the snapshot and the signing tables: what the hub's
    other domains need (runs, evaluations, search, lineage: imported by writes, for their hooks) stays unloaded."""
    from fmhub.client import LocalHub
    from fmhub.signing import create_key_pair

    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "weights.bin").write_bytes(os.urandom(4096))
    (folder / "config.json").write_text("{}")
    pair = create_key_pair(tmp_path / "k.key")
    with LocalHub() as hub:  # the test's own FMHUB_HOME (conftest), which the children are given
        hub.upload(folder, "acme/m")
        hub.add_signing_key("acme", pair.public_path.read_bytes(), name="k")
    env = {"FMHUB_HOME": os.environ["FMHUB_HOME"]}
    # signing commits model.sig: a write, so the domains with tables and write hooks load, but no HTTP client (no
    # remote hub, no MLflow exporter) and no PostgreSQL dialect on SQLite
    sign = ("from fmhub.cli import main\n"
            "import contextlib, io, sys\n"
            "with contextlib.redirect_stdout(io.StringIO()):\n"
            "    assert main(['sign', 'acme/m', '--key', sys.argv[1]]) == 0\n")
    assert _imported(sign, str(pair.private_path), env=env,
                     watched=("httpx", "fmhub.client._remote", "sqlalchemy.dialects.postgresql", "torch")) == set()
    code = ("from fmhub.cli import main\n"
            "import contextlib, io\n"
            "with contextlib.redirect_stdout(io.StringIO()) as out:\n"
            "    assert main(['verify', 'acme/m']) == 0\n"
            "assert '2 files signed by key k' in out.getvalue(), out.getvalue()\n")
    assert _imported(code, watched=NOT_FOR_VERIFY, env=env) == set()


def test_the_remote_client_loads_no_record_domain_until_used() -> None:
    """RemoteHub (``--endpoint``) imports the runs, evaluations and search record types in the methods that build
    them: reading a repo or verifying a signature on a hub server loads none of them (nor YAML cards)."""
    code = "from fmhub.client import RemoteHub\nassert RemoteHub.__name__ == 'RemoteHub'\n"
    assert _imported(code, watched=("fmhub.runs", "fmhub.evaluations", "fmhub.search", "fmhub.lineage",
                                    "fmhub.cards", "yaml")) == set()


def test_the_command_table_names_what_each_module_registers() -> None:
    """COMMAND_MODULES (what lazy loading looks commands up in) matches the modules' own registrations."""
    registered: dict[str, str] = {}
    for module_name in dict.fromkeys(COMMAND_MODULES.values()):
        module = getattr(__import__(f"fmhub.cli.{module_name}").cli, module_name)
        sub = typer.Typer()
        module.register(sub)
        for name in [c.name or "" for c in sub.registered_commands] + [g.name for g in sub.registered_groups]:
            registered[name] = module_name
    assert registered == COMMAND_MODULES
