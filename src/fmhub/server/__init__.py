"""The hub server: the store over HTTP, speaking the Hugging Face Hub protocol, with accounts and tokens."""

from __future__ import annotations

from fmhub.server._auth import HubConfig
from fmhub.server.app import create_app

__all__ = ["create_app", "HubConfig"]
