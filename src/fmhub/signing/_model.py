"""Signatures of model versions in the OpenSSF model-signing format (the ``model-signing`` package, key-based).

A signature is a Sigstore bundle (``model.sig``) holding a DSSE envelope over an in-toto statement whose
predicate lists every file of the version with its sha256. It signs the files, not a hub: it verifies the same
on a downloaded folder, offline, with ``model_signing verify key`` or with :func:`verify_folder`.

The bundle is read and written by :mod:`._bundle` (the same format, without importing Sigstore's client; each
file read once, files hashed in parallel); this module adds what a hub needs around it: which key signed (the
bundle's key hint is the key's fingerprint), trust and revocation, and failures that name the file or key
(:class:`~fmhub.errors.SignatureError`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from fmhub.errors import InvalidInputError, SignatureError
from fmhub.signing import _bundle
from fmhub.signing._keys import fingerprint, load_private_key

__all__ = ["SIGNATURE_FILE", "UNSIGNED_PATHS", "TrustedKey", "SignedManifest", "sign_folder", "sign_files",
           "read_signature",
           "verify_folder", "check_files", "hash_folder", "is_unsigned_path"]

#: Where a version's signature lives, beside its files (model-signing's own default name).
SIGNATURE_FILE = "model.sig"
#: Paths a signature never covers: itself, and git's bookkeeping (model-signing ignores these by default).
UNSIGNED_PATHS = (SIGNATURE_FILE, ".gitattributes", ".gitignore", ".git", ".github")


def is_unsigned_path(path: str, extra: Sequence[str] = ()) -> bool:
    """Whether ``path`` (repo-relative, posix) is outside what a signature covers."""
    return any(path == p or path.startswith(p.rstrip("/") + "/") for p in (*UNSIGNED_PATHS, *extra))


@dataclass(frozen=True)
class TrustedKey:
    """A public key a verifier trusts: from the hub (per namespace) or given with ``--trust``.

    ``revoked_at`` set: signatures by it fail verification from then on.
    """

    fingerprint: str
    public_pem: str
    name: str = ""
    namespace: str = ""
    created_at: datetime | None = None
    revoked_at: datetime | None = None

    @classmethod
    def from_pem(cls, public_pem: bytes | str, *, name: str = "", namespace: str = "") -> TrustedKey:
        pem = public_pem.decode() if isinstance(public_pem, bytes) else public_pem
        return cls(fingerprint(pem), pem, name=name, namespace=namespace)

    def to_json(self) -> dict[str, Any]:
        return {"fingerprint": self.fingerprint, "public_key": self.public_pem, "name": self.name,
                "namespace": self.namespace,
                "created_at": self.created_at.isoformat() if self.created_at else None,
                "revoked_at": self.revoked_at.isoformat() if self.revoked_at else None}

    @property
    def label(self) -> str:
        return f"{self.name} ({self.fingerprint[:16]})" if self.name else self.fingerprint[:16]


@dataclass(frozen=True)
class SignedManifest:
    """What a valid signature says: the key that made it, the model's name, and each signed file's sha256."""

    key: TrustedKey
    model_name: str
    files: dict[str, str]  # path -> sha256 hex
    ignore_paths: tuple[str, ...]


def hash_folder(folder: Path, ignore: Sequence[str] = ()) -> dict[str, str]:
    """Every file under ``folder`` that a signature covers → its sha256 (each file read once, in parallel)."""
    folder = Path(folder)
    try:
        return _bundle.hash_files(folder, (*ignore, *UNSIGNED_PATHS))
    except (ValueError, OSError) as exc:  # a symlink, a special file, an unreadable file
        raise SignatureError(f"cannot hash {folder}: {exc}", reason="invalid", item=str(folder)) from exc


def sign_folder(folder: Path, private_key: Path, *, name: str | None = None, password: str | None = None,
                ignore: Sequence[str] = ()) -> bytes:
    """Sign every file under ``folder`` (but ``model.sig`` and git's files) with an EC private key.

    Args:
        name: the model's name in the statement (informative; default the folder's name), e.g. ``acme/bert``.
        ignore: more repo paths to leave out (recorded in the signature, so verifiers leave them out too).

    Returns:
        The signature (a Sigstore bundle, JSON) to store as ``model.sig`` beside the files; the
        ``model_signing`` tool verifies it too.

    Example:
        >>> sig = sign_folder(Path("./tiny-bert"), Path("me.key"))
        >>> (Path("./tiny-bert") / "model.sig").write_bytes(sig)
    """
    key = load_private_key(private_key, password)  # a clear error before any hashing
    return _sign(hash_folder(Path(folder), ignore), key, name or Path(folder).name, ignore)


def sign_files(files: Mapping[str, str], private_key: Path, *, name: str, password: str | None = None,
               ignore: Sequence[str] = ()) -> bytes:
    """Sign files already hashed (path → sha256 hex, as :func:`hash_folder` returns): :func:`sign_folder` without
    reading them, for a caller that has just hashed them (``Hub.sign`` checks them against the commit first).

    Example:
        >>> sig = sign_files(hash_folder(folder), Path("me.key"), name="acme/bert")
    """
    return _sign(files, load_private_key(private_key, password), name, ignore)


def _sign(files: Mapping[str, str], key: Any, name: str, ignore: Sequence[str]) -> bytes:
    if not files:
        raise InvalidInputError(f"{name} has no file to sign", hint="upload the model's files first")
    return _bundle.encode(name, dict(files), (*ignore, *UNSIGNED_PATHS), key)


def _key_hint(data: bytes) -> str:
    try:
        bundle = json.loads(data)
        hint = bundle["verificationMaterial"]["publicKey"]["hint"]
    except (ValueError, KeyError, TypeError) as exc:
        raise SignatureError(f"{SIGNATURE_FILE} is not a model-signing signature bundle", reason="invalid",
                             item=SIGNATURE_FILE, hint="sign the version again: fmhub sign REPO@REV --key KEY"
                             ) from exc
    if not isinstance(hint, str) or len(hint) != 64:
        raise SignatureError(f"{SIGNATURE_FILE} names no signing key (not a key-based signature)",
                             reason="invalid", item=SIGNATURE_FILE)
    return hint


def read_signature(data: bytes, keys: Sequence[TrustedKey], *, at: datetime | None = None) -> SignedManifest:
    """Check a signature's key and cryptography, and return what it signs (files are not looked at).

    Args:
        keys: the trusted keys; a revoked one fails (``at``: when it is checked, default now).

    Raises:
        SignatureError: unparsable (``invalid``), by a key not in ``keys`` (``untrusted``), by a revoked key
            (``revoked``), or the envelope does not verify with the key (``invalid``).
    """
    from datetime import UTC

    hint = _key_hint(data)
    key = next((k for k in keys if k.fingerprint == hint), None)
    if key is None:
        raise SignatureError(f"{SIGNATURE_FILE} is signed by key {hint[:16]}, which is not trusted",
                             reason="untrusted", item=hint,
                             hint="add the signer's public key to the org (fmhub keys add) or pass --trust KEY.pub")
    now = at or datetime.now(UTC)
    if key.revoked_at is not None and key.revoked_at <= now:
        raise SignatureError(f"{SIGNATURE_FILE} is signed by key {key.label}, revoked on "
                             f"{key.revoked_at:%Y-%m-%d %H:%M} UTC", reason="revoked", item=key.fingerprint,
                             hint="have the version signed again with a trusted key")
    try:
        model_name, params, files = _bundle.decode(data, key.public_pem)
    except ValueError as exc:
        raise SignatureError(f"{SIGNATURE_FILE} does not verify with key {key.label}: {exc}", reason="invalid",
                             item=SIGNATURE_FILE, hint="the signature was altered; sign the version again") from None
    if params.get("method") != "files" or params.get("hash_type") != "sha256":
        raise SignatureError(f"{SIGNATURE_FILE} uses {params.get('method')}/{params.get('hash_type')} hashing; "
                             "fmhub verifies per-file sha256 signatures", reason="invalid", item=SIGNATURE_FILE)
    return SignedManifest(key, model_name, files, tuple(params.get("ignore_paths") or ()))


def check_files(signed: SignedManifest, actual: Mapping[str, str], *, where: str) -> None:
    """Compare the signed files with ``actual`` (path → sha256 of what is there now).

    Raises:
        SignatureError: a file changed (``changed``), was renamed (``renamed``), added (``added``) or removed
            (``removed``); the message names it.
    """
    actual = {p: d for p, d in actual.items() if not is_unsigned_path(p, signed.ignore_paths)}
    changed = sorted(p for p in signed.files.keys() & actual.keys() if signed.files[p] != actual[p])
    removed = sorted(signed.files.keys() - actual.keys())
    added = sorted(actual.keys() - signed.files.keys())
    renamed = [(old, new) for old in removed for new in added if signed.files[old] == actual[new]]
    hint = "the files differ from what was signed: fetch the version again, or have it signed again"
    if changed:
        path = changed[0]
        raise SignatureError(f"{path} in {where} changed since it was signed (sha256 {actual[path][:16]}…, signed "
                             f"{signed.files[path][:16]}…)" + (f"; {len(changed) - 1} more file(s) changed"
                                                            if len(changed) > 1 else ""),
                             reason="changed", item=path, hint=hint)
    if renamed:
        old, new = renamed[0]
        raise SignatureError(f"{old} in {where} was renamed to {new} since it was signed", reason="renamed",
                             item=old, hint=hint)
    if removed:
        raise SignatureError(f"{removed[0]} in {where} is missing: it was signed" +
                             (f" ({len(removed) - 1} more missing)" if len(removed) > 1 else ""),
                             reason="removed", item=removed[0], hint=hint)
    if added:
        raise SignatureError(f"{added[0]} in {where} was not signed (added after signing)" +
                             (f" ({len(added) - 1} more)" if len(added) > 1 else ""),
                             reason="added", item=added[0], hint=hint)


def verify_folder(folder: Path, keys: Sequence[TrustedKey], *, signature: bytes | None = None,
                  at: datetime | None = None, where: str | None = None) -> SignedManifest:
    """Verify a downloaded version: ``folder/model.sig`` (or ``signature``) by a trusted, unrevoked key, over
    exactly the files in ``folder`` (each hashed once).

    Raises:
        SignatureError: missing signature, or any failure of :func:`read_signature` / :func:`check_files`.

    Example:
        >>> verify_folder(Path("./tiny-bert"), [TrustedKey.from_pem(Path("me.pub").read_bytes())])
    """
    folder = Path(folder)
    where = where or str(folder)
    if signature is None:
        path = folder / SIGNATURE_FILE
        if not path.is_file():
            raise SignatureError(f"{where} is not signed: it holds no {SIGNATURE_FILE}", reason="missing",
                                 item=SIGNATURE_FILE, hint="sign it: fmhub sign REPO@REV --key KEY")
        signature = path.read_bytes()
    signed = read_signature(signature, keys, at=at)
    check_files(signed, hash_folder(folder, signed.ignore_paths), where=where)
    return signed
