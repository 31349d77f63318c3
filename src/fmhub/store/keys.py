"""Key-encryption keys (KEKs) for encryption at rest: who wraps and unwraps the blobs' data keys.

Every blob is encrypted with its own random data key (AES-256-GCM, see :mod:`fmhub.store.encryption`);
the data key is stored only *wrapped* by a key-encryption key that a :class:`KeyProvider` holds. The
default provider is a local key file; a KMS (AWS KMS, Vault transit, an HSM) fits the same methods, so it
can replace the file without the blob layer knowing.

Keys come in *scopes*: the store-wide scope (``""``) wraps every blob by default; a namespace (a user or an
organization) may have a key of its own, which then wraps the data keys of the blobs its repos hold, so
that it can be rotated, or revoked (crypto-shredding), without touching any other namespace.

The key file is JSON, readable by its owner only (mode 0600; a file others can read is refused)::

    {"format": "fmhub-keys/1", "current": "k20261206-3f9a1c",
     "keys": {"k20261206-3f9a1c": "<base64 of 32 random bytes>", "k20261206-77ab02": "<base64>"},
     "namespaces": {"acme": {"current": "k20261206-77ab02", "keys": ["k20261206-77ab02"]}},
     "revoked": {"k20261201-0c1d2e": {"namespace": "globex", "revoked_at": "2026-12-01T10:00:00Z"}}}

``current`` wraps new data keys of the store-wide scope, ``namespaces[ns].current`` those of a namespace
with its own key; older keys still unwrap the data keys wrapped before a rotation until ``fmhub encryption
rotate`` has re-wrapped them all (then ``--retire`` removes them). ``revoked`` keeps no key material, only
which namespace's key was destroyed and when, so that a read of a shredded blob says so.
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
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from fmhub.errors import ConfigError, EncryptionKeyError, RevokedKeyError

__all__ = ["KeyProvider", "LocalKeyFile", "EncryptionKeyError", "create_key_file", "KEY_FILE_FORMAT"]

KEY_FILE_FORMAT = "fmhub-keys/1"
_KEY_BYTES = 32
_NONCE_BYTES = 12


class KeyProvider(abc.ABC):
    """Wraps and unwraps data keys; never hands out a key-encryption key itself.

    A KMS provider implements :attr:`current_key_id`, :meth:`wrap` and :meth:`unwrap` (its key ids are what the
    KMS calls its keys: an ARN, a Vault transit key name and version); per-namespace keys need
    :meth:`namespace_key_id` too. Key management (create, rotate, revoke) is the KMS's own business there;
    :class:`LocalKeyFile` does it itself.
    """

    #: A short name for messages (``file:/etc/fmhub/keys.json``, ``kms:arn:…``): no secret in it.
    name: str

    @property
    @abc.abstractmethod
    def current_key_id(self) -> str:
        """The id of the key new store-wide data keys are wrapped with."""

    @abc.abstractmethod
    def wrap(self, data_key: bytes, context: bytes, scope: str = "") -> tuple[str, bytes]:
        """Wrap a data key with ``scope``'s current key (``""``: the store-wide one), bound to ``context``;
        returns (key id, wrapped bytes). Raises :class:`EncryptionKeyError` for a namespace without a key."""

    @abc.abstractmethod
    def unwrap(self, key_id: str, wrapped: bytes, context: bytes) -> bytes:
        """The data key back. Raises :class:`EncryptionKeyError` for an unknown or revoked key, or a wrong context."""

    def key_ids(self) -> list[str]:
        """Every key id this provider can unwrap with."""
        return [self.current_key_id]

    def holds(self, key_id: str) -> bool:
        """Whether :meth:`unwrap` can use this key (without trying it)."""
        return key_id in self.key_ids()

    def namespaces(self) -> dict[str, str]:
        """Namespaces with a key of their own → the id of their current key (none by default)."""
        return {}

    def namespace_key_id(self, namespace: str) -> str | None:
        """The current key of a namespace with a key of its own, else None (its blobs use the store-wide key)."""
        return self.namespaces().get(namespace.lower())

    def revocation(self, key_id: str) -> str | None:
        """Why a key is gone, if it was revoked on purpose (``"key k… of namespace acme, revoked 2026-12-01…"``)."""
        return None

    def version(self) -> object:
        """A token that changes whenever the keys do (a rotation, a revocation), cheap to ask for: caches of
        key rows are dropped when it changes. None: the provider cannot tell."""
        return None


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


@dataclass(frozen=True)
class _KeyFileState:
    current: str
    keys: dict[str, AESGCM]
    namespaces: dict[str, str]  # namespace -> its current key id
    owners: dict[str, str]  # key id -> namespace, for namespace keys
    revoked: dict[str, dict[str, str]]  # key id -> {"namespace", "revoked_at"}


class LocalKeyFile(KeyProvider):
    """Key-encryption keys in a local JSON file with mode 0600 (the default provider)."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path).expanduser().resolve()
        self.name = f"file:{self.path}"
        self._state = self._load()

    def _fresh(self) -> None:
        """Re-read the file when it changed (a rotation by another process): new data keys use the new key."""
        try:
            info = self.path.stat()
        except OSError:
            return  # keep the keys in memory; the next successful stat reloads
        if (info.st_mtime_ns, info.st_ino) != self._mtime:
            self._state = self._load()

    def _load(self) -> _KeyFileState:
        fix = f"set FMHUB_ENCRYPTION_KEY_FILE to the store's key file, or create one with: fmhub encryption init {self.path}"
        if not self.path.is_file():
            raise EncryptionKeyError(f"the encryption key file {self.path} does not exist", hint=fix)
        _check_private(self.path)
        info = self.path.stat()
        self._mtime = (info.st_mtime_ns, info.st_ino)  # the file is replaced, never edited: a new inode
        self._generation = getattr(self, "_generation", 0) + 1
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
            namespaces, owners = {}, {}
            for namespace, entry in document.get("namespaces", {}).items():
                if entry["current"] not in keys:
                    raise ValueError(f"namespace {namespace!r}'s current key {entry['current']!r} is not among "
                                     "its keys")
                namespaces[namespace] = entry["current"]
                owners.update({key_id: namespace for key_id in entry["keys"]})
            revoked = {key_id: {"namespace": str(info["namespace"]), "revoked_at": str(info["revoked_at"])}
                       for key_id, info in document.get("revoked", {}).items()}
        except (OSError, ValueError, KeyError, TypeError, AttributeError, binascii.Error) as exc:
            raise EncryptionKeyError(f"the encryption key file {self.path} is not a valid fmhub key file: {exc}",
                                     hint="restore it from your backup of the key") from None
        return _KeyFileState(current, keys, namespaces, owners, revoked)

    @property
    def current_key_id(self) -> str:
        return self._state.current

    def key_ids(self) -> list[str]:
        return list(self._state.keys)

    def version(self) -> object:
        self._fresh()
        return self._generation

    def holds(self, key_id: str) -> bool:
        self._fresh()
        return key_id in self._state.keys

    def namespaces(self) -> dict[str, str]:
        self._fresh()
        return dict(self._state.namespaces)

    def namespace_key_id(self, namespace: str) -> str | None:
        self._fresh()
        return self._state.namespaces.get(namespace.lower())

    def owner(self, key_id: str) -> str:
        """The namespace a key belongs to (``""``: the store-wide scope)."""
        return self._state.owners.get(key_id, "")

    def revocation(self, key_id: str) -> str | None:
        info = self._state.revoked.get(key_id)
        if info is None:
            self._fresh()
            info = self._state.revoked.get(key_id)
        return None if info is None else f"key {key_id} of namespace {info['namespace']}, revoked {info['revoked_at']}"

    def wrap(self, data_key: bytes, context: bytes, scope: str = "") -> tuple[str, bytes]:
        self._fresh()
        key_id = self._state.current if not scope else self._state.namespaces.get(scope)
        if key_id is None:
            raise EncryptionKeyError(f"namespace {scope!r} has no encryption key of its own in {self.path}",
                                     hint=f"create one with: fmhub encryption key create --namespace {scope}")
        nonce = secrets.token_bytes(_NONCE_BYTES)
        return key_id, nonce + self._state.keys[key_id].encrypt(nonce, data_key, context)

    def unwrap(self, key_id: str, wrapped: bytes, context: bytes) -> bytes:
        # One stat per unwrap: a key retired or revoked by another process leaves this one's memory at once.
        self._fresh()
        kek = self._state.keys.get(key_id)
        if kek is None:
            revoked = self.revocation(key_id)
            if revoked:
                raise RevokedKeyError(
                    f"stored data was encrypted only under {revoked}: it cannot be read any more",
                    hint="this is what revoking the key is for (crypto-shredding); only a backup of the key file "
                         "made before the revocation can bring it back")
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

    # -- key management: rotation, namespace keys, revocation ------------------------------------------

    def _edit(self) -> dict:
        document = json.loads(self.path.read_text())
        document.setdefault("namespaces", {})
        document.setdefault("revoked", {})
        return document

    def _save(self, document: dict) -> None:
        _write_private(self.path, document)
        self._state = self._load()

    def add_key(self, namespace: str = "") -> str:
        """Add a new random key and make it current for the store-wide scope, or for ``namespace`` (which must
        already have a key of its own); the old ones stay, to unwrap. Returns the new key's id."""
        document = self._edit()
        if namespace and namespace not in document["namespaces"]:
            raise EncryptionKeyError(f"namespace {namespace!r} has no encryption key of its own to rotate",
                                     hint=f"create one with: fmhub encryption key create --namespace {namespace}")
        key_id = _new_key_id()
        document["keys"][key_id] = base64.b64encode(secrets.token_bytes(_KEY_BYTES)).decode()
        if namespace:
            document["namespaces"][namespace]["current"] = key_id
            document["namespaces"][namespace]["keys"].append(key_id)
        else:
            document["current"] = key_id
        self._save(document)
        return key_id

    def create_namespace_key(self, namespace: str) -> str:
        """Give ``namespace`` a key of its own; returns its id. Refuses a namespace that already has one."""
        document = self._edit()
        if namespace in document["namespaces"]:
            raise EncryptionKeyError(f"namespace {namespace!r} already has its own encryption key "
                                     f"{document['namespaces'][namespace]['current']}",
                                     hint=f"rotate it with: fmhub encryption rotate --namespace {namespace}")
        key_id = _new_key_id()
        document["keys"][key_id] = base64.b64encode(secrets.token_bytes(_KEY_BYTES)).decode()
        document["namespaces"][namespace] = {"current": key_id, "keys": [key_id]}
        self._save(document)
        return key_id

    def retire(self, key_ids: list[str]) -> None:
        """Remove keys (never a current one) from the file."""
        document = self._edit()
        current = {document["current"], *(entry["current"] for entry in document["namespaces"].values())}
        for key_id in key_ids:
            if key_id not in current:
                document["keys"].pop(key_id, None)
                for entry in document["namespaces"].values():
                    if key_id in entry["keys"]:
                        entry["keys"].remove(key_id)
        self._save(document)

    def revoke_namespace(self, namespace: str) -> list[str]:
        """Destroy every key of ``namespace`` (its key material leaves the file; only a record of the revocation
        stays); returns their ids. The namespace's later blobs use the store-wide key."""
        document = self._edit()
        entry = document["namespaces"].pop(namespace, None)
        if entry is None:
            raise EncryptionKeyError(f"namespace {namespace!r} has no encryption key of its own",
                                     hint="`fmhub encryption status` lists the namespaces that have one")
        when = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        for key_id in entry["keys"]:
            document["keys"].pop(key_id, None)
            document["revoked"][key_id] = {"namespace": namespace, "revoked_at": when}
        self._save(document)
        return list(entry["keys"])
