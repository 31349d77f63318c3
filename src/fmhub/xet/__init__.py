"""Xet storage: the server side of the Xet protocol that ``huggingface_hub`` 2.x (``hf_xet``) speaks.

Files arrive as xorbs (runs of content-defined chunks, compressed) and shards (which chunks make which
file); the hub keeps each xorb and shard as a blob, indexes every chunk, and holds a Xet file as its list
of chunk runs. A new version of a file shares every unchanged chunk with the old one, so only changed
chunks are sent and stored. Registered with the store as a storage extension: every path that reads a
file by its sha256 (downloads, ``fmhub download``, LFS clients, ``fsck``, ``gc``) reads Xet files too.

Example:
    >>> from fmhub.xet import XetStorage
    >>> xet = XetStorage(store)
    >>> xet.receive_xorb(xorb_hash, body, repo=repo)                        # validated, then stored
    >>> xet.receive_shard(shard, repo=repo, actor="alice", may_read=rule)   # files recorded for repo
    >>> plan = xet.reconstruction(file_hash, None, may_read=rule)           # what a client fetches
"""

from fmhub.store.extensions import register_extension
from fmhub.xet._extension import XetExtension
from fmhub.xet._hashes import chunk_hash, file_hash, from_hex, to_hex, verification_hash, xorb_hash
from fmhub.xet._storage import (
    FetchRange,
    MayRead,
    Reconstruction,
    ReconstructionTerm,
    XetFile,
    XetStorage,
)

__all__ = ["XetStorage", "XetFile", "Reconstruction", "ReconstructionTerm", "FetchRange", "MayRead", "to_hex",
           "from_hex", "chunk_hash", "xorb_hash", "file_hash", "verification_hash"]

# Registering is what makes the store read, count and collect Xet files (the store imports this package
# with its table module; it never names the package's code).
register_extension(XetExtension())
