"""The model page's signature panel: is this version signed by a key its namespace trusts, over exactly its
files, and which of the hub's attestations cover it — what ``fmhub verify`` checks, from the hub's records.

Files are compared by the sha256 the store holds them under (checked when stored), as the signature policy
does, so the panel reads no weights; ``fmhub verify`` re-hashes the bytes a client downloads.
"""

from __future__ import annotations

from typing import Any

from fmhub.constants import settings
from fmhub.errors import FmhubError, SignatureError
from fmhub.server.web._repo import RepoView
from fmhub.signing import SIGNATURE_FILE, Attestor, TrustedKeys, check_files, read_signature
from fmhub.store import Store

__all__ = ["signature_panel"]

#: A signature bundle is a few kB (one line per file); a larger file is not read by a page.
_MAX_BYTES = 4 * 1024 * 1024


def signature_panel(store: Store, view: RepoView) -> dict[str, Any] | None:
    """What the panel shows for a model version (None for datasets)."""
    if view.repo.repo_type != "model":
        return None
    order = {c.oid: i for i, c in enumerate(store.list_commits(view.repo.repo_id, view.commit.oid, limit=200))}
    records = [r for r in Attestor(store, settings().signing_key).list(view.repo.repo_id) if r.commit in order]
    kinds = sorted({r.kind for r in records})
    panel: dict[str, Any] = {"attested": kinds, "command": f"fmhub verify {view.repo.repo_id}@{view.commit.oid[:12]}"}
    entry = next((e for e in view.files if e.path == SIGNATURE_FILE), None)
    if entry is None:
        return {**panel, "status": "unsigned", "text": "Not signed"}
    if entry.size > _MAX_BYTES:
        return {**panel, "status": "bad", "text": f"{SIGNATURE_FILE} is too large to be a signature"}
    try:
        keys = TrustedKeys(store.db).list(view.repo.namespace)
        signed = read_signature(store.read_bytes(view.repo.repo_id, SIGNATURE_FILE, view.commit.oid), keys)
        check_files(signed, {e.path: e.blob_sha256 for e in view.files}, where="this version")
    except SignatureError as exc:
        return {**panel, "status": "bad", "text": exc.message}
    except FmhubError as exc:  # the blob is unreadable: say so, the page still renders
        return {**panel, "status": "bad", "text": exc.message}
    return {**panel, "status": "good", "text": f"Signed by {signed.key.label}",
            "detail": f"{len(signed.files)} files, trusted by {view.repo.namespace}"}
