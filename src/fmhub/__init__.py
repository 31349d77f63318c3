"""fmhub: self-hosted infrastructure for foundation models.

The store (versioned model and dataset repositories) is the foundation every stage builds on, and the
Hub client reaches it embedded or on a hub server (``FMHUB_ENDPOINT``) alike::

    from fmhub import Hub
    with Hub.open() as hub:
        hub.download("acme/tiny-bert", local_dir="./tiny-bert")
"""

from __future__ import annotations

from fmhub._version import __version__
from fmhub.client import Hub
from fmhub.errors import FmhubError
from fmhub.formats import LoadedModel, load
from fmhub.store import Store, open_store

__all__ = ["__version__", "FmhubError", "Hub", "LoadedModel", "Store", "load", "open_store"]
