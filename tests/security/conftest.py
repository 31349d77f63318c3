"""The attack suite's fixtures: the live hub server and accounts of tests/server/conftest.py, shared.

pytest gives a conftest's fixtures to its own folder only; this one loads tests/server/conftest.py
by path and exposes the same fixtures (``hub_url``, ``tokens``, ``alice_api``, ...) here.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

_spec = importlib.util.spec_from_file_location("_server_fixtures", Path(__file__).parents[1] / "server" / "conftest.py")
assert _spec is not None and _spec.loader is not None
_server_fixtures = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = _server_fixtures  # dataclasses look their module up there
_spec.loader.exec_module(_server_fixtures)

ADMIN_TOKEN = _server_fixtures.ADMIN_TOKEN
Tokens = _server_fixtures.Tokens
accounts = _server_fixtures.accounts
tokens = _server_fixtures.tokens
hub_config = _server_fixtures.hub_config
hub_url = _server_fixtures.hub_url
hf_env = _server_fixtures.hf_env
hf_api = _server_fixtures.hf_api
alice_api = _server_fixtures.alice_api
