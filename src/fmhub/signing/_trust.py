"""What a hub trusts: public keys per namespace (add, list, revoke) and the refs that need a signature to move."""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import delete, insert, select, update

from fmhub.errors import InvalidInputError, SignatureError, SigningKeyNotFoundError
from fmhub.signing import _tables as t
from fmhub.signing._keys import fingerprint as key_fingerprint
from fmhub.signing._keys import public_key_pem
from fmhub.signing._model import SIGNATURE_FILE, TrustedKey, check_files, read_signature
from fmhub.store import Database, validate_repo_id
from fmhub.store.extensions import RefGuard, register_ref_guard

__all__ = ["TrustedKeys", "SigningPolicy", "SignaturePolicyGuard", "check_ref_pattern", "check_namespace"]

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,95}$")
_PATTERN = re.compile(r"^[A-Za-z0-9._/*?\[\]-]{1,255}$")


def _aware(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def check_namespace(namespace: object) -> str:
    """A validated namespace (the first part of a repo id: an organization or a user)."""
    if not isinstance(namespace, str) or "/" in namespace:
        raise InvalidInputError(f"invalid namespace {namespace!r}", hint="an organization or user name, e.g. acme")
    return validate_repo_id(f"{namespace}/x").split("/")[0]


def check_ref_pattern(pattern: object) -> str:
    """A validated ref pattern of a policy: a branch or tag name, with ``*``/``?`` globs (``prod``, ``release-*``)."""
    if not isinstance(pattern, str) or not _PATTERN.match(pattern) or ".." in pattern:
        raise InvalidInputError(f"{pattern!r} is not a ref pattern", hint="use a ref name or glob like prod or v*")
    return pattern


@dataclass(frozen=True)
class SigningPolicy:
    namespace: str
    ref_pattern: str
    created_by: str | None
    created_at: datetime

    def to_json(self) -> dict[str, Any]:
        return {"namespace": self.namespace, "ref_pattern": self.ref_pattern, "created_by": self.created_by,
                "created_at": self.created_at.isoformat()}

    def matches(self, ref: str) -> bool:
        return fnmatch.fnmatchcase(ref.removeprefix("refs/heads/").removeprefix("refs/tags/"), self.ref_pattern)


class TrustedKeys:
    """Trusted signing keys and signature policies, per namespace (an organization or a user), in the hub's
    database. Callers check who may change them (the server: org admins); this class keeps the records.

    Example:
        >>> keys = TrustedKeys(store.db)
        >>> key = keys.add("acme", Path("release.pub").read_text(), name="release", actor="alice")
        >>> keys.revoke("acme", key.fingerprint, actor="alice")
    """

    def __init__(self, db: Database) -> None:
        self.db = db

    @staticmethod
    def _key(row: Any) -> TrustedKey:
        return TrustedKey(row.fingerprint, row.public_key, name=row.name, namespace=row.namespace,
                          created_at=_aware(row.created_at), revoked_at=_aware(row.revoked_at))

    def add(self, namespace: str, public_pem: str | bytes, *, name: str | None = None,
            actor: str | None = None) -> TrustedKey:
        """Trust ``public_pem`` for ``namespace``'s versions; adding a key already there returns it unchanged.

        Raises:
            InvalidInputError: not an EC public key, a bad name, or the key was revoked (a revoked key stays
                revoked: create a new one).
        """
        ns = check_namespace(namespace).lower()
        pem = public_key_pem(public_pem.encode() if isinstance(public_pem, str) else public_pem).decode()
        fp = key_fingerprint(pem)
        name = name or f"key-{fp[:8]}"
        if not _NAME.match(name):
            raise InvalidInputError(f"key name {name!r} is not valid", hint="letters, digits, '.', '_', '-'")
        with self.db.write() as conn:
            row = conn.execute(select(t.signing_keys).where(t.signing_keys.c.namespace == ns,
                                                            t.signing_keys.c.fingerprint == fp)).first()
            if row is not None:
                if row.revoked_at is not None:
                    raise InvalidInputError(f"key {fp[:16]} of {namespace} was revoked; it cannot be trusted again",
                                            hint="create a new key pair: fmhub keys create NAME")
                return self._key(row)
            conn.execute(insert(t.signing_keys).values(namespace=ns, fingerprint=fp, name=name, public_key=pem,
                                                       created_by=actor, created_at=datetime.now(UTC)))
            row = conn.execute(select(t.signing_keys).where(t.signing_keys.c.namespace == ns,
                                                            t.signing_keys.c.fingerprint == fp)).one()
        return self._key(row)

    def list(self, namespace: str, *, include_revoked: bool = True) -> list[TrustedKey]:
        """``namespace``'s keys, oldest first (revoked ones too, unless not ``include_revoked``)."""
        query = select(t.signing_keys).where(t.signing_keys.c.namespace == namespace.lower())
        if not include_revoked:
            query = query.where(t.signing_keys.c.revoked_at.is_(None))
        with self.db.read() as conn:
            return [self._key(r) for r in conn.execute(query.order_by(t.signing_keys.c.pk))]

    def _find(self, conn: Any, namespace: str, fingerprint: str) -> Any:
        prefix = fingerprint.lower()
        if not re.fullmatch(r"[0-9a-f]{8,64}", prefix):
            raise InvalidInputError(f"{fingerprint!r} is not a key fingerprint",
                                    hint=f"copy it from: fmhub keys list {namespace}")
        rows = conn.execute(select(t.signing_keys).where(t.signing_keys.c.namespace == namespace.lower(),
                                                         t.signing_keys.c.fingerprint.startswith(prefix))).all()
        if len(rows) != 1:
            raise SigningKeyNotFoundError(namespace, fingerprint)
        return rows[0]

    def revoke(self, namespace: str, fingerprint: str, *, actor: str | None = None) -> TrustedKey:
        """Revoke a key (by fingerprint or a unique prefix of ≥ 8 hex digits): signatures by it fail from now on.
        Revoking a revoked key keeps its first revocation time."""
        with self.db.write() as conn:
            row = self._find(conn, namespace, fingerprint)
            if row.revoked_at is None:
                conn.execute(update(t.signing_keys).where(t.signing_keys.c.pk == row.pk).values(
                    revoked_at=datetime.now(UTC), revoked_by=actor))
            row = conn.execute(select(t.signing_keys).where(t.signing_keys.c.pk == row.pk)).one()
        return self._key(row)

    # -- policies ---------------------------------------------------------------------------------

    @staticmethod
    def _policy(row: Any) -> SigningPolicy:
        return SigningPolicy(row.namespace, row.ref_pattern, row.created_by, _aware(row.created_at))

    def add_policy(self, namespace: str, ref_pattern: str, *, actor: str | None = None) -> SigningPolicy:
        """Require a valid signature by one of ``namespace``'s keys before a ref matching ``ref_pattern`` of any of
        its model repos moves (is created or updated). Idempotent."""
        ns, pattern = check_namespace(namespace).lower(), check_ref_pattern(ref_pattern)
        with self.db.write() as conn:
            query = select(t.signing_policies).where(t.signing_policies.c.namespace == ns,
                                                     t.signing_policies.c.ref_pattern == pattern)
            if conn.execute(query).first() is None:
                conn.execute(insert(t.signing_policies).values(namespace=ns, ref_pattern=pattern, created_by=actor,
                                                               created_at=datetime.now(UTC)))
            return self._policy(conn.execute(query).one())

    def remove_policy(self, namespace: str, ref_pattern: str) -> None:
        with self.db.write() as conn:
            conn.execute(delete(t.signing_policies).where(t.signing_policies.c.namespace == namespace.lower(),
                                                          t.signing_policies.c.ref_pattern == ref_pattern))

    def policies(self, namespace: str) -> list[SigningPolicy]:
        with self.db.read() as conn:
            rows = conn.execute(select(t.signing_policies).where(t.signing_policies.c.namespace == namespace.lower())
                                .order_by(t.signing_policies.c.pk))
            return [self._policy(r) for r in rows]

    def protecting(self, namespace: str, ref: str) -> SigningPolicy | None:
        """The policy that makes ``ref`` of ``namespace``'s repos need a signature, if any."""
        return next((p for p in self.policies(namespace) if p.matches(ref)), None)


#: The largest model.sig a policy check reads (a bundle lists one line per file: megabytes at most).
_MAX_SIGNATURE_BYTES = 64 * 1024 * 1024


class SignaturePolicyGuard(RefGuard):
    """The store's ref guard for signature policies: a ref a namespace's policy names only points at a commit of
    a model repo whose model.sig is by one of the namespace's trusted, unrevoked keys and covers exactly the
    commit's files. Files are compared by the sha256 the store holds them under (verified when stored)."""

    name = "signature-policy"

    def check_ref_move(self, store: Any, conn: Any, *, repo_type: str, repo_id: str, kind: str, name: str,
                       commit_oid: str, tree: dict[str, tuple[str, int]]) -> None:
        if repo_type != "model":
            return
        namespace = repo_id.split("/")[0].lower()
        rows = conn.execute(select(t.signing_policies).where(t.signing_policies.c.namespace == namespace)).all()
        policy = next((p for p in map(TrustedKeys._policy, rows) if p.matches(name)), None)
        if policy is None:
            return
        where = f"{repo_id}@{commit_oid[:12]}"
        prefix = f"{kind} {name!r} of {repo_id} only moves to signed commits ({namespace}'s policy " \
                 f"{policy.ref_pattern!r}): "
        try:
            entry = tree.get(SIGNATURE_FILE)
            if entry is None:
                raise SignatureError(f"{where} is not signed: it holds no {SIGNATURE_FILE}", reason="missing",
                                     item=SIGNATURE_FILE)
            if entry[1] > _MAX_SIGNATURE_BYTES:
                raise SignatureError(f"{SIGNATURE_FILE} of {where} is too large to be a signature", reason="invalid",
                                     item=SIGNATURE_FILE)
            data = b"".join(store.iter_blob(entry[0]))
            keys = [TrustedKeys._key(r) for r in conn.execute(
                select(t.signing_keys).where(t.signing_keys.c.namespace == namespace))]
            signed = read_signature(data, keys)
            check_files(signed, {path: sha for path, (sha, _size) in tree.items()}, where=where)
        except SignatureError as exc:
            raise SignatureError(prefix + exc.message, reason=exc.reason, item=exc.item,
                                 hint=f"sign it first: fmhub sign {repo_id}@<branch> --key KEY") from None


register_ref_guard(SignaturePolicyGuard())
