"""fmhub: self-hosted infrastructure for foundation models.

The store (versioned model and dataset repositories) is the foundation every stage builds on::

    from fmhub import open_store
"""

from __future__ import annotations

from fmhub.errors import FmhubError
from fmhub.store import Store, open_store

__all__ = ["__version__", "FmhubError", "Store", "open_store"]

__version__ = "0.1.0"
