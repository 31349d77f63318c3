"""The hub server: the store over HTTP, speaking the Hugging Face Hub protocol, with accounts and tokens."""

from __future__ import annotations

from fmhub.hub._auth import HubConfig
from fmhub.hub.app import create_app

__all__ = ["create_app", "HubConfig"]
