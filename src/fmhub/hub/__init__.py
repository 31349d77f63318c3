"""The hub server: the store over HTTP, speaking the Hugging Face Hub protocol."""

from __future__ import annotations

from fmhub.hub.app import create_app

__all__ = ["create_app"]
