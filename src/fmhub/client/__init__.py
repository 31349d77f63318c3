"""The Hub client: one interface to versioned repositories, embedded or on a hub server.

Stages, scripts and the CLI use :class:`Hub` and never the store's internals, so everything that runs on
the embedded store (``$FMHUB_HOME``) runs against a remote server by setting ``FMHUB_ENDPOINT`` (and
``FMHUB_TOKEN``):

- :class:`LocalHub` — the store in this process (SQLite/PostgreSQL metadata, file/S3 blobs);
- :class:`RemoteHub` — HTTP to ``fmhub server`` in the Hugging Face Hub protocol.

Records go the same way as repos: training runs (``start_run``, ``run_metrics_logger``, ``finish_run``,
``get_run``, ``list_runs``...), report cards (``record_evaluation``, ``list_evaluations``) and pipeline
step records (``find_pipeline_step``, ``save_pipeline_step``) are kept by the hub the client talks to
(remotely through fmhub's native API, ``/api/fmhub/…``), never in a local database beside it.

Example:
    >>> from fmhub.client import hub
    >>> with hub() as h:                                  # FMHUB_ENDPOINT set? remote : embedded
    ...     h.upload("./tiny-bert", "acme/tiny-bert", title="Add model")
    ...     h.create_tag("acme/tiny-bert", "v1.0")
    ...     folder = h.download("acme/tiny-bert", revision="v1.0", local_dir="./v1.0")
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from fmhub._lazy import lazy_names
from fmhub.client._base import (
    CommitOperation,
    Hub,
    PullRequestDetails,
    RepoInfo,
    UploadFile,
    default_author,
    is_pull_request_ref,
    register_backend,
)
from fmhub.client._local import LocalHub

if TYPE_CHECKING:
    from fmhub.client._remote import UNKNOWN_TIME, RemoteHub

__all__ = ["Hub", "LocalHub", "RemoteHub", "hub", "RepoInfo", "UploadFile", "CommitOperation", "UNKNOWN_TIME",
           "default_author", "PullRequestDetails", "is_pull_request_ref"]

# The HTTP client (httpx, and RemoteHub's translation of every record type) is imported on first use (PEP 562): a
# command on the embedded store does not load it.
__getattr__, __dir__ = lazy_names("fmhub.client", {"RemoteHub": "fmhub.client._remote",
                                                   "UNKNOWN_TIME": "fmhub.client._remote"}, globals())


def _remote_hub(endpoint: str, token: str | None = None) -> Hub:
    from fmhub.client._remote import RemoteHub

    return RemoteHub(endpoint, token=token)


register_backend("local", LocalHub)
register_backend("remote", _remote_hub)


def hub(endpoint: str | None = None, token: str | None = None) -> Hub:
    """:meth:`Hub.open`: the remote hub ``endpoint`` / ``$FMHUB_ENDPOINT`` names, else the embedded store.

    Example:
        >>> with hub("http://127.0.0.1:8000", token="fmhub_...") as h:
        ...     print([repo.repo_id for repo in h.list_repos()])
    """
    return Hub.open(endpoint, token)
