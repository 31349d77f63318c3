"""fmhub: self-hosted infrastructure for foundation models.

The store (versioned model and dataset repositories) is the foundation every stage builds on, and the
Hub client reaches it embedded or on a hub server (``FMHUB_ENDPOINT``) alike::

    from fmhub import Hub
    with Hub.open() as hub:
        hub.download("acme/tiny-bert", local_dir="./tiny-bert")

The names below are imported on first use (PEP 562), so ``import fmhub.signing`` or the ``fmhub`` command line
do not pay for the client, the store and the ML stack unless they use them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from fmhub._lazy import lazy_names
from fmhub._version import __version__

if TYPE_CHECKING:
    from fmhub.client import Hub
    from fmhub.errors import FmhubError
    from fmhub.formats import LoadedModel, load
    from fmhub.store import Store, open_store

__all__ = ["__version__", "FmhubError", "Hub", "LoadedModel", "Store", "load", "open_store"]

_LAZY = {"FmhubError": "fmhub.errors", "Hub": "fmhub.client", "LoadedModel": "fmhub.formats", "load": "fmhub.formats",
         "Store": "fmhub.store", "open_store": "fmhub.store"}


__getattr__, __dir__ = lazy_names("fmhub", _LAZY, globals())
