"""The package's shape is a test: import-linter checks the contracts in pyproject.toml ([tool.importlinter]).

Layers from the CLI down to errors and constants (an import goes down, never up or sideways), no import circle
between the modules and packages of any package, no stage reaching into the store's internals, and a hub server
that imports no stage, task or format (it runs without the ML stack).
"""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_the_import_contracts_hold(monkeypatch) -> None:
    from importlinter.cli import lint_imports

    monkeypatch.chdir(ROOT)  # the contracts are in pyproject.toml here
    assert lint_imports(config_filename=str(ROOT / "pyproject.toml"), no_cache=True) == 0, \
        "an import breaks the architecture contracts: run `.venv/bin/lint-imports` for the details"


def test_a_broken_contract_is_caught(tmp_path: Path, monkeypatch) -> None:
    """The check can fail: a contract the code breaks (the store importing the client) is reported."""
    from importlinter.cli import lint_imports

    config = tmp_path / "contracts.toml"
    config.write_text('[tool.importlinter]\nroot_package = "fmhub"\n\n'
                      '[[tool.importlinter.contracts]]\nname = "client above store, inverted"\ntype = "layers"\n'
                      'layers = ["fmhub.store", "fmhub.client"]\n')
    monkeypatch.chdir(ROOT)
    assert lint_imports(config_filename=str(config), no_cache=True) == 1
