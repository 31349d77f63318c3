"""The attack suite's fixtures: the live hub server and accounts of tests/server/conftest.py, and the live
inference server of tests/serve/conftest.py, shared.

pytest gives a conftest's fixtures to its own folder only; this one loads those conftests by path and
exposes the same fixtures (``hub_url``, ``tokens``, ``alice_api``, ``live``, ...) here.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path



def _load(name: str, folder: str):
    spec = importlib.util.spec_from_file_location(name, Path(__file__).parents[1] / folder / "conftest.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


_server_fixtures = _load("_server_fixtures", "server")
_serve_fixtures = _load("_serve_fixtures", "serve")
live = _serve_fixtures.live

ADMIN_TOKEN = _server_fixtures.ADMIN_TOKEN
Tokens = _server_fixtures.Tokens
accounts = _server_fixtures.accounts
tokens = _server_fixtures.tokens
hub_config = _server_fixtures.hub_config
hub_url = _server_fixtures.hub_url
hf_env = _server_fixtures.hf_env
hf_api = _server_fixtures.hf_api
alice_api = _server_fixtures.alice_api
