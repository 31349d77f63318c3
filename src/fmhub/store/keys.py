"""Key-encryption keys (KEKs) for encryption at rest: who wraps and unwraps the blobs' data keys.

Every blob is encrypted with its own random data key (AES-256-GCM, see
:mod:`fmhub.store.blobs.encrypted`); the data key is stored only *wrapped* by a key-encryption key that
a :class:`KeyProvider` holds. The default provider is a local key file; a KMS (AWS KMS, Vault transit,
an HSM) fits the same three methods, so it can replace the file without the blob layer knowing.

The key file is JSON, readable by its owner only (mode 0600; a file others can read is refused)::

    {"format": "fmhub-keys/1", "current": "k20261206-3f9a1c",
     "keys": {"k20261206-3f9a1c": "<base64 of 32 random bytes>"}}

``current`` wraps new data keys; the others still unwrap the data keys wrapped before a rotation until
``fmhub encryption rotate`` has re-wrapped them all (then ``--retire`` removes them).
"""

from __future__ import annotations

import abc
import base64
import binascii
import json
import os
import secrets
import stat
import tempfile
import time
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from fmhub.errors import ConfigError, EncryptionKeyError

__all__ = ["KeyProvider", "LocalKeyFile", "EncryptionKeyError", "create_key_file", "KEY_FILE_FORMAT"]

KEY_FILE_FORMAT = "fmhub-keys/1"
_KEY_BYTES = 32
_NONCE_BYTES = 12


class KeyProvider(abc.ABC):
    """Wraps and unwraps data keys; never hands out the key-encryption key itself."""

    #: A short name for messages (``file:/etc/fmhub/keys.json``, ``kms:arn:…``): no secret in it.
    name: str

    @property
    @abc.abstractmethod
    def current_key_id(self) -> str:
        """The id of the key new data keys are wrapped with."""

    @abc.abstractmethod
    def wrap(self, data_key: bytes, context: bytes) -> tuple[str, bytes]:
        """Wrap a data key with the current key, bound to ``context``; returns (key id, wrapped bytes)."""

    @abc.abstractmethod
    def unwrap(self, key_id: str, wrapped: bytes, context: bytes) -> bytes:
        """The data key back. Raises :class:`EncryptionKeyError` for an unknown key or a wrong context."""

    def key_ids(self) -> list[str]:
        """Every key id this provider can unwrap with."""
        return [self.current_key_id]


def _new_key_id() -> str:
    return f"k{time.strftime('%Y%m%d', time.gmtime())}-{secrets.token_hex(3)}"


def _check_private(path: Path) -> None:
    mode = path.stat().st_mode
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise EncryptionKeyError(
            f"the encryption key file {path} can be read by other users (mode {stat.S_IMODE(mode):o})",
            hint=f"restrict it to its owner: chmod 600 {path}")


def _write_private(path: Path, document: dict) -> None:
    """Replace ``path`` atomically with a 0600 file holding ``document``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".keys-", suffix=".tmp")
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w") as out:
            json.dump(document, out, indent=1)
            out.write("\n")
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def create_key_file(path: Path) -> str:
    """Create a new key file with one random key; returns its id. Refuses to overwrite a file."""
    path = Path(path).expanduser()
    if path.exists():
        raise ConfigError(f"{path} already exists", hint="keep it (it unlocks the store), or pick another path")
    key_id = _new_key_id()
    _write_private(path, {"format": KEY_FILE_FORMAT, "current": key_id,
                          "keys": {key_id: base64.b64encode(secrets.token_bytes(_KEY_BYTES)).decode()}})
    return key_id


class LocalKeyFile(KeyProvider):
    """Key-encryption keys in a local JSON file with mode 0600 (the default provider)."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path).expanduser().resolve()
        self.name = f"file:{self.path}"
        self._current, self._keys = self._load()

    def _fresh(self) -> None:
        """Re-read the file when it changed (a rotation by another process): new data keys use the new key."""
        try:
            mtime = self.path.stat().st_mtime_ns
        except OSError:
            return  # keep the keys in memory; the next successful stat reloads
        if mtime != self._mtime:
            self._current, self._keys = self._load()

    def _load(self) -> tuple[str, dict[str, AESGCM]]:
        fix = f"set FMHUB_ENCRYPTION_KEY_FILE to the store's key file, or create one with: fmhub encryption init {self.path}"
        if not self.path.is_file():
            raise EncryptionKeyError(f"the encryption key file {self.path} does not exist", hint=fix)
        _check_private(self.path)
        self._mtime = self.path.stat().st_mtime_ns
        try:
            document = json.loads(self.path.read_text())
            if document.get("format") != KEY_FILE_FORMAT:
                raise ValueError(f"format is {document.get('format')!r}, expected {KEY_FILE_FORMAT!r}")
            keys = {}
            for key_id, encoded in document["keys"].items():
                raw = base64.b64decode(encoded, validate=True)
                if len(raw) != _KEY_BYTES:
                    raise ValueError(f"key {key_id} is {len(raw)} bytes, expected {_KEY_BYTES}")
                keys[key_id] = AESGCM(raw)
            current = document["current"]
            if current not in keys:
                raise ValueError(f"its current key {current!r} is not among its keys")
        except (OSError, ValueError, KeyError, TypeError, AttributeError, binascii.Error) as exc:
            raise EncryptionKeyError(f"the encryption key file {self.path} is not a valid fmhub key file: {exc}",
                                     hint="restore it from your backup of the key") from None
        return current, keys

    @property
    def current_key_id(self) -> str:
        return self._current

    def key_ids(self) -> list[str]:
        return list(self._keys)

    def wrap(self, data_key: bytes, context: bytes) -> tuple[str, bytes]:
        self._fresh()
        nonce = secrets.token_bytes(_NONCE_BYTES)
        return self._current, nonce + self._keys[self._current].encrypt(nonce, data_key, context)

    def unwrap(self, key_id: str, wrapped: bytes, context: bytes) -> bytes:
        kek = self._keys.get(key_id)
        if kek is None:
            self._fresh()
            kek = self._keys.get(key_id)
        if kek is None:
            raise EncryptionKeyError(
                f"stored data was encrypted with key {key_id!r}, which {self.path} does not hold",
                hint="point FMHUB_ENCRYPTION_KEY_FILE at the key file that holds it (a backup from before a "
                     "rotation that retired it)")
        try:
            return kek.decrypt(wrapped[:_NONCE_BYTES], wrapped[_NONCE_BYTES:], context)
        except InvalidTag:
            raise EncryptionKeyError(
                f"a data key wrapped with key {key_id!r} does not unwrap: the key file holds a different key "
                "under that id, or the wrapped key was modified", hint="restore the key file from its backup") from None

    # -- rotation ---------------------------------------------------------------------------------

    def add_key(self) -> str:
        """Add a new random key and make it current (the old ones stay, to unwrap); returns its id."""
        document = json.loads(self.path.read_text())
        key_id = _new_key_id()
        document["keys"][key_id] = base64.b64encode(secrets.token_bytes(_KEY_BYTES)).decode()
        document["current"] = key_id
        _write_private(self.path, document)
        self._current, self._keys = self._load()
        return key_id

    def retire(self, key_ids: list[str]) -> None:
        """Remove keys (never the current one) from the file."""
        document = json.loads(self.path.read_text())
        for key_id in key_ids:
            if key_id != document["current"]:
                document["keys"].pop(key_id, None)
        _write_private(self.path, document)
        self._current, self._keys = self._load()
