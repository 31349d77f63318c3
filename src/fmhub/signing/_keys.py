"""Signing keys: EC P-256 key pairs (what the OpenSSF model-signing format signs with), their fingerprints, and
the hub's own key for attestations.

A fingerprint is the sha256 of the public key's PEM (SubjectPublicKeyInfo) — the ``hint`` model-signing writes
into every signature bundle, so a signature names the key that made it without carrying the key.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from fmhub.errors import ConfigError, InvalidInputError

__all__ = ["KeyPair", "create_key_pair", "public_key_pem", "fingerprint", "load_private_key", "hub_key",
           "private_key_fingerprint"]

#: The curves model-signing accepts (Sigstore's protobuf specs): P-256 by default.
_CURVES = {"secp256r1", "secp384r1", "secp521r1"}


@dataclass(frozen=True)
class KeyPair:
    """Where :func:`create_key_pair` wrote a key pair, and the public key's fingerprint."""

    private_path: Path
    public_path: Path
    fingerprint: str


def fingerprint(public_pem: bytes | str) -> str:
    """The sha256 (hex) of a public key's PEM, after checking it is an EC public key model-signing accepts.

    Raises:
        InvalidInputError: not a PEM public key, or not on P-256/P-384/P-521.
    """
    data = public_pem.encode() if isinstance(public_pem, str) else public_pem
    canonical = public_key_pem(data)
    return hashlib.sha256(canonical).hexdigest()


def private_key_fingerprint(key: ec.EllipticCurvePrivateKey) -> str:
    """The fingerprint of a private key's public half (what signatures by it name)."""
    return hashlib.sha256(key.public_key().public_bytes(serialization.Encoding.PEM,
                                                        serialization.PublicFormat.SubjectPublicKeyInfo)).hexdigest()


def public_key_pem(data: bytes) -> bytes:
    """A public key's PEM in the canonical form model-signing hashes (SubjectPublicKeyInfo)."""
    try:
        key = serialization.load_pem_public_key(data)
    except (ValueError, TypeError) as exc:
        raise InvalidInputError("not a PEM public key", hint="give the .pub file `fmhub keys create` wrote") from exc
    if not isinstance(key, ec.EllipticCurvePublicKey) or key.curve.name not in _CURVES:
        raise InvalidInputError("the public key is not an elliptic-curve key on P-256, P-384 or P-521",
                                hint="create one with: fmhub keys create NAME")
    return key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def _write_private(path: Path, data: bytes) -> None:
    """Write a private key readable by its owner only: created with mode 0600, never widened (no umask race)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)


def create_key_pair(private_path: Path, *, password: str | None = None, overwrite: bool = False) -> KeyPair:
    """Generate an EC P-256 key pair: ``private_path`` (PEM PKCS#8, mode 0600, encrypted if ``password``) and
    ``private_path`` with suffix ``.pub`` (PEM public key, to give the hub or verifiers).

    Raises:
        InvalidInputError: a file exists there (unless ``overwrite``).
    """
    private_path = Path(private_path)
    public_path = private_path.with_suffix(".pub")
    for path in (private_path, public_path):
        if path.exists() and not overwrite:
            raise InvalidInputError(f"{path} exists", hint="pick another name, or pass --force to replace it")
    private_path.parent.mkdir(parents=True, exist_ok=True)
    key = ec.generate_private_key(ec.SECP256R1())
    encryption = (serialization.BestAvailableEncryption(password.encode()) if password
                  else serialization.NoEncryption())
    private_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption)
    public_pem = key.public_key().public_bytes(serialization.Encoding.PEM,
                                               serialization.PublicFormat.SubjectPublicKeyInfo)
    for path in (private_path, public_path):
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
    _write_private(private_path, private_pem)
    public_path.write_bytes(public_pem)
    return KeyPair(private_path, public_path, hashlib.sha256(public_pem).hexdigest())


def load_private_key(path: Path, password: str | None = None) -> ec.EllipticCurvePrivateKey:
    """A private key file, with errors that name the fix (never the key's bytes).

    Raises:
        InvalidInputError: missing, unreadable, encrypted without a password, or not an EC key.
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InvalidInputError(f"cannot read the private key {path}: {exc.strerror}",
                                hint="create one with: fmhub keys create NAME") from exc
    try:
        key = serialization.load_pem_private_key(data, password.encode() if password else None)
    except TypeError as exc:
        raise InvalidInputError(f"the private key {path} is encrypted", hint="give its password") from exc
    except ValueError as exc:
        raise InvalidInputError(f"{path} is not a PEM private key (or the password is wrong)",
                                hint="give the .key file `fmhub keys create` wrote") from exc
    if not isinstance(key, ec.EllipticCurvePrivateKey) or key.curve.name not in _CURVES:
        raise InvalidInputError(f"{path} is not an elliptic-curve key on P-256, P-384 or P-521",
                                hint="create one with: fmhub keys create NAME")
    return key


def hub_key(path: Path) -> ec.EllipticCurvePrivateKey:
    """The hub's attestation key at ``path`` (``FMHUB_SIGNING_KEY``), created on first use.

    Raises:
        ConfigError: the file exists but is not a usable key.
    """
    path = Path(path)
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(FileExistsError):  # another process created it first: use theirs
            tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
            key = ec.generate_private_key(ec.SECP256R1())
            _write_private(tmp, key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                  serialization.NoEncryption()))
            try:
                os.link(tmp, path)
            finally:
                tmp.unlink()
    try:
        return load_private_key(path)
    except InvalidInputError as exc:
        raise ConfigError(f"the hub signing key FMHUB_SIGNING_KEY={path} is unusable: {exc.message}",
                          hint="point FMHUB_SIGNING_KEY at an unencrypted EC private key (PEM)") from exc
