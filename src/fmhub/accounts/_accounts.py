"""Users, organizations, memberships and access tokens over the store's metadata database."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from sqlalchemy import Connection, delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError as SQLIntegrityError

from fmhub.accounts import _tables as t
from fmhub.errors import (
    AccountExistsError,
    AccountNotFoundError,
    AuthenticationError,
    ConfigError,
    InvalidInputError,
)
from fmhub.store import Database

__all__ = [
    "Accounts",
    "Account",
    "Member",
    "TokenInfo",
    "Principal",
    "ORG_ROLES",
    "TOKEN_ROLES",
    "TOKEN_PREFIX",
    "RESERVED_NAMES",
    "validate_account_name",
]

#: Roles of a member in an organization: read private repos, write (push, create, delete repos), admin
#: (also manage members).
ORG_ROLES = ("read", "write", "admin")
#: Roles of a token: what it may do on behalf of its user (a write token never exceeds the user's rights).
TOKEN_ROLES = ("read", "write")
#: Every token fmhub issues starts with this, so secret scanners can find leaked ones.
TOKEN_PREFIX = "fmhub_"

#: Names that would collide with URL routes of the hub (``/api/...``, ``/datasets/...``) or mislead.
RESERVED_NAMES = frozenset({
    "api", "datasets", "models", "spaces", "docs", "redoc", "openapi.json", "healthz", "readyz", "settings",
    "login", "logout", "join", "new", "fmhub", "huggingface", "static", "assets", "metrics", "local",
    "anonymous",
})
_NAME = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9._-]{0,94}[A-Za-z0-9])?$")
_MIN_TOKEN_LENGTH = 20  # for tokens given from outside (FMHUB_ADMIN_TOKEN): guessable values are refused
_LAST_USED_RESOLUTION = timedelta(minutes=1)  # write last_used_at at most this often per token


def _now() -> datetime:
    return datetime.now(UTC)


def _aware(value: datetime | None) -> datetime | None:
    return value if value is None or value.tzinfo else value.replace(tzinfo=UTC)


def validate_account_name(name: object) -> str:
    """A user or organization name: letters, digits, ``.``, ``_``, ``-``; not a reserved word."""
    if not isinstance(name, str) or not _NAME.match(name) or ".." in name or "--" in name:
        raise InvalidInputError(
            f"invalid account name {name!r}",
            hint="use 1-96 letters, digits, '.', '_' or '-', starting and ending with a letter or digit",
        )
    if name.lower() in RESERVED_NAMES:
        raise InvalidInputError(f"{name!r} is reserved", hint="pick another name")
    return name


def _check_role(role: str, allowed: tuple[str, ...], what: str) -> str:
    if role not in allowed:
        raise InvalidInputError(f"invalid {what} role {role!r}", hint=f"use one of: {', '.join(allowed)}")
    return role


def _lookup(token: str) -> str:
    # An index into the tokens table, not a credential: the salted hash below is what is checked.
    return hashlib.sha256(token.encode()).hexdigest()[:16]


def _checked_secret(value: str | None) -> str:
    """A new random token, or a given one (automation) if it is long enough to be unguessable."""
    if value is None:
        return TOKEN_PREFIX + secrets.token_urlsafe(32)
    if len(value) < _MIN_TOKEN_LENGTH or not value.isprintable() or " " in value:
        raise ConfigError(f"a given token must be at least {_MIN_TOKEN_LENGTH} printable characters without "
                          "spaces", hint="generate one with: python -c 'import secrets; print(secrets.token_urlsafe(32))'")
    return value


def _salted(salt_hex: str, token: str) -> str:
    return hashlib.sha256(bytes.fromhex(salt_hex) + token.encode()).hexdigest()


@dataclass(frozen=True)
class Account:
    kind: str  # "user" | "org"
    name: str
    fullname: str | None
    email: str | None
    is_admin: bool
    created_at: datetime


@dataclass(frozen=True)
class Member:
    org: str
    user: str
    role: str
    created_at: datetime


@dataclass(frozen=True)
class TokenInfo:
    """A token's metadata; the secret itself is returned once, by :meth:`Accounts.create_token`."""

    id: int
    user: str
    name: str
    role: str
    created_at: datetime
    expires_at: datetime | None
    last_used_at: datetime | None
    revoked_at: datetime | None

    @property
    def active(self) -> bool:
        return self.revoked_at is None and (self.expires_at is None or self.expires_at > _now())


@dataclass(frozen=True)
class Principal:
    """Who a request acts for: a user, the role of the token used, and the user's organizations."""

    user: str
    token_role: str
    is_admin: bool = False
    orgs: dict[str, str] = field(default_factory=dict)  # lower(org name) -> role in it
    token_name: str | None = None
    #: The id of the token used: what credentials derived from it (Xet tokens, signed URLs) name, so that
    #: revoking the token revokes them too (:meth:`Accounts.authenticate_id`).
    token_id: int | None = None

    def namespace_role(self, namespace: str) -> str | None:
        """The user's role over a namespace: ``admin`` for their own, their org role, else None."""
        if namespace.lower() == self.user.lower():
            return "admin"
        return self.orgs.get(namespace.lower())

    def can_read_namespace(self, namespace: str) -> bool:
        """May see the namespace's private repos."""
        return self.is_admin or self.namespace_role(namespace) is not None

    def can_write_namespace(self, namespace: str) -> bool:
        """May create, push to, change and delete the namespace's repos (needs a write token)."""
        if self.token_role != "write":
            return False
        return self.is_admin or self.namespace_role(namespace) in ("write", "admin")


class Accounts:
    """Accounts and tokens, stored beside the repos (same database, same transactions discipline).

    Example:
        >>> accounts = Accounts(store.db)
        >>> accounts.create_user("alice")
        >>> info, secret = accounts.create_token("alice", name="laptop", role="write")
        >>> accounts.authenticate(secret).user
        'alice'
    """

    def __init__(self, db: Database) -> None:
        self.db = db

    # -- accounts -------------------------------------------------------------------------------

    def create_user(self, name: str, *, admin: bool = False, fullname: str | None = None,
                    email: str | None = None) -> Account:
        return self._create("user", name, admin=admin, fullname=fullname, email=email)

    def create_org(self, name: str, *, owner: str | None = None, fullname: str | None = None) -> Account:
        """Create an organization; ``owner`` (a user) becomes its first admin member."""
        account = self._create("org", name, admin=False, fullname=fullname, email=None)
        if owner is not None:
            self.set_member(name, owner, "admin")
        return account

    def _create(self, kind: str, name: str, *, admin: bool, fullname: str | None, email: str | None) -> Account:
        name = validate_account_name(name)
        try:
            with self.db.write() as conn:
                if self._row(conn, name, required=False) is not None:
                    raise AccountExistsError(name)
                conn.execute(insert(t.accounts).values(kind=kind, name=name, key=name.lower(), fullname=fullname,
                                                       email=email, is_admin=admin, created_at=_now()))
                return self._account(self._row(conn, name))
        except SQLIntegrityError:  # a concurrent create of the same name won
            raise AccountExistsError(name) from None

    def get(self, name: str) -> Account:
        with self.db.read() as conn:
            return self._account(self._row(conn, name))

    def exists(self, name: str) -> bool:
        with self.db.read() as conn:
            return self._row(conn, name, required=False) is not None

    def list(self, *, kind: str | None = None) -> list[Account]:
        query = select(t.accounts).order_by(t.accounts.c.key)
        if kind is not None:
            query = query.where(t.accounts.c.kind == kind)
        with self.db.read() as conn:
            return [self._account(row) for row in conn.execute(query)]

    def delete(self, name: str) -> None:
        """Delete a user (its tokens and memberships go with it) or an organization (its memberships).

        Repos in the namespace are left alone: delete them first if they should go too.
        """
        with self.db.write() as conn:
            row = self._row(conn, name)
            conn.execute(delete(t.tokens).where(t.tokens.c.user_pk == row.pk))
            conn.execute(delete(t.memberships).where(
                (t.memberships.c.user_pk == row.pk) | (t.memberships.c.org_pk == row.pk)))
            conn.execute(delete(t.accounts).where(t.accounts.c.pk == row.pk))

    def set_admin(self, name: str, admin: bool) -> Account:
        with self.db.write() as conn:
            row = self._row(conn, name, kind="user")
            conn.execute(update(t.accounts).where(t.accounts.c.pk == row.pk).values(is_admin=admin))
            return self._account(self._row(conn, name))

    # -- memberships ----------------------------------------------------------------------------

    def set_member(self, org: str, user: str, role: str) -> Member:
        """Add ``user`` to ``org`` with ``role`` (read | write | admin), or change their role."""
        role = _check_role(role, ORG_ROLES, "member")
        with self.db.write() as conn:
            org_row = self._row(conn, org, kind="org")
            user_row = self._row(conn, user, kind="user")
            now = _now()
            changed = conn.execute(update(t.memberships).where(
                t.memberships.c.org_pk == org_row.pk, t.memberships.c.user_pk == user_row.pk).values(role=role)
            ).rowcount
            if not changed:
                conn.execute(insert(t.memberships).values(org_pk=org_row.pk, user_pk=user_row.pk, role=role,
                                                          created_at=now))
            return Member(org_row.name, user_row.name, role, now)

    def remove_member(self, org: str, user: str) -> None:
        with self.db.write() as conn:
            org_row = self._row(conn, org, kind="org")
            user_row = self._row(conn, user, kind="user")
            removed = conn.execute(delete(t.memberships).where(
                t.memberships.c.org_pk == org_row.pk, t.memberships.c.user_pk == user_row.pk)).rowcount
            if not removed:
                raise AccountNotFoundError("member", f"{user_row.name} of {org_row.name}")

    def members(self, org: str) -> list[Member]:
        with self.db.read() as conn:
            org_row = self._row(conn, org, kind="org")
            rows = conn.execute(
                select(t.accounts.c.name, t.memberships.c.role, t.memberships.c.created_at)
                .join(t.memberships, t.memberships.c.user_pk == t.accounts.c.pk)
                .where(t.memberships.c.org_pk == org_row.pk).order_by(t.accounts.c.key)
            ).all()
        return [Member(org_row.name, r.name, r.role, _aware(r.created_at)) for r in rows]

    def orgs_of(self, conn: Connection, user_pk: int) -> dict[str, str]:
        rows = conn.execute(
            select(t.accounts.c.key, t.memberships.c.role)
            .join(t.memberships, t.memberships.c.org_pk == t.accounts.c.pk)
            .where(t.memberships.c.user_pk == user_pk)
        ).all()
        return {r.key: r.role for r in rows}

    def memberships(self, user: str) -> list[Member]:
        with self.db.read() as conn:
            user_row = self._row(conn, user, kind="user")
            rows = conn.execute(
                select(t.accounts.c.name, t.memberships.c.role, t.memberships.c.created_at)
                .join(t.memberships, t.memberships.c.org_pk == t.accounts.c.pk)
                .where(t.memberships.c.user_pk == user_row.pk).order_by(t.accounts.c.key)
            ).all()
        return [Member(r.name, user_row.name, r.role, _aware(r.created_at)) for r in rows]

    # -- tokens ---------------------------------------------------------------------------------

    def create_token(self, user: str, *, name: str, role: str = "read", expires_at: datetime | None = None,
                     value: str | None = None, parent: int | None = None) -> tuple[TokenInfo, str]:
        """Issue a token for ``user``; returns its metadata and the secret, which is not stored (show it once).

        Args:
            role: ``read`` (download, list) or ``write`` (also push, create, delete).
            expires_at: when it stops working (default: never).
            value: use this secret instead of a random one (bootstrap automation); ≥ 20 characters.
            parent: the id of an active token of ``user`` this one is made from (a web session's log-in
                token): the new token stops working when that one is revoked or expires, and never
                outlives it. A token made from a child is tied to the child's own parent.

        Raises:
            AuthenticationError: ``parent`` is not an active token of ``user``.
        """
        role = _check_role(role, TOKEN_ROLES, "token")
        name = (name or "").strip()
        if not name or len(name) > 96:
            raise InvalidInputError("a token needs a name of 1-96 characters", hint="e.g. --name laptop")
        if expires_at is not None and _aware(expires_at) <= _now():
            raise InvalidInputError("the expiry is in the past", hint="give a future time or a duration like 30d")
        expires_at = _aware(expires_at)
        value = _checked_secret(value)
        now = _now()
        with self.db.write() as conn:
            user_row = self._row(conn, user, kind="user")
            if parent is not None:
                parent, parent_expiry = self._parent_of_new_token(conn, user_row.pk, parent)
                if parent_expiry is not None and (expires_at is None or parent_expiry < expires_at):
                    expires_at = parent_expiry
            token_pk = self._insert_token(conn, user_row.pk, name, role, value, now, expires_at, parent)
        return TokenInfo(token_pk, user_row.name, name, role, now, expires_at, None, None), value

    def _parent_of_new_token(self, conn: Connection, user_pk: int, parent: int) -> tuple[int, datetime | None]:
        """The root token a new child of ``parent`` hangs from, and the earliest expiry on the way."""
        row = conn.execute(select(t.tokens).where(t.tokens.c.pk == parent)).one_or_none()
        if row is None or row.user_pk != user_pk or not self._active_row(conn, row):
            raise AuthenticationError("the token a new token is made from must be an active token of its user")
        expiry = _aware(row.expires_at)
        if row.parent_pk is not None:  # flatten: every child names a token with no parent of its own
            root = conn.execute(select(t.tokens).where(t.tokens.c.pk == row.parent_pk)).one()
            root_expiry = _aware(root.expires_at)
            if root_expiry is not None and (expiry is None or root_expiry < expiry):
                expiry = root_expiry
            return root.pk, expiry
        return row.pk, expiry

    @staticmethod
    def _active_row(conn: Connection, row) -> bool:
        """Whether a token row is usable now: neither it nor the token it was made from is revoked or expired."""
        now = _now()

        def live(r) -> bool:
            expires = _aware(r.expires_at)
            return r.revoked_at is None and (expires is None or expires > now)

        if not live(row):
            return False
        if row.parent_pk is None:
            return True
        parent = conn.execute(select(t.tokens.c.revoked_at, t.tokens.c.expires_at)
                              .where(t.tokens.c.pk == row.parent_pk)).one_or_none()
        return parent is not None and live(parent)

    @staticmethod
    def _insert_token(conn: Connection, user_pk: int, name: str, role: str, value: str, now: datetime,
                      expires_at: datetime | None, parent: int | None = None) -> int:
        salt = secrets.token_hex(16)
        return conn.execute(insert(t.tokens).values(
            user_pk=user_pk, name=name, role=role, lookup=_lookup(value), salt=salt, hash=_salted(salt, value),
            created_at=now, expires_at=expires_at, parent_pk=parent)).inserted_primary_key[0]

    def tokens(self, user: str | None = None) -> list[TokenInfo]:
        query = (select(t.tokens, t.accounts.c.name.label("user_name"))
                 .join(t.accounts, t.accounts.c.pk == t.tokens.c.user_pk).order_by(t.tokens.c.pk))
        with self.db.read() as conn:
            if user is not None:
                query = query.where(t.tokens.c.user_pk == self._row(conn, user, kind="user").pk)
            return [self._token(row) for row in conn.execute(query)]

    def revoke_token(self, token_id: int, *, user: str | None = None) -> TokenInfo:
        """Revoke a token (idempotent); with ``user``, only that user's token."""
        with self.db.write() as conn:
            query = (select(t.tokens, t.accounts.c.name.label("user_name"))
                     .join(t.accounts, t.accounts.c.pk == t.tokens.c.user_pk).where(t.tokens.c.pk == token_id))
            if user is not None:
                query = query.where(t.accounts.c.key == user.lower())
            row = conn.execute(query).one_or_none()
            if row is None:
                raise AccountNotFoundError("token", str(token_id))
            if row.revoked_at is None:
                now = _now()
                conn.execute(update(t.tokens).where(t.tokens.c.pk == token_id).values(revoked_at=now))
                # Tokens made from it (web sessions) end with it; authenticate checks the parent anyway.
                conn.execute(update(t.tokens).where(t.tokens.c.parent_pk == token_id, t.tokens.c.revoked_at.is_(None))
                             .values(revoked_at=now))
                row = conn.execute(query).one()
            return self._token(row)

    def authenticate(self, token: str) -> Principal:
        """The principal a bearer token stands for.

        Raises:
            AuthenticationError: unknown, revoked or expired token (one message for all: no oracle).
        """
        invalid = AuthenticationError("invalid or expired token",
                                      hint="create a new one with: fmhub token create --user NAME --role write")
        if not token or len(token) > 512:
            raise invalid
        with self.db.read() as conn:
            row = conn.execute(
                select(t.tokens, t.accounts.c.name.label("user_name"), t.accounts.c.is_admin)
                .join(t.accounts, t.accounts.c.pk == t.tokens.c.user_pk).where(t.tokens.c.lookup == _lookup(token))
            ).one_or_none()
            if row is None or not hmac.compare_digest(row.hash, _salted(row.salt, token)):
                raise invalid
            info = self._token(row)
            if not info.active or not self._active_row(conn, row):
                raise invalid
            orgs = self.orgs_of(conn, row.user_pk)
        if info.last_used_at is None or _now() - info.last_used_at > _LAST_USED_RESOLUTION:
            with self.db.write() as conn:
                conn.execute(update(t.tokens).where(t.tokens.c.pk == row.pk).values(last_used_at=_now()))
        return Principal(row.user_name, row.role, bool(row.is_admin), orgs, row.name, row.pk)

    def authenticate_id(self, token_id: int) -> Principal:
        """The principal of the token with this id, as long as it is active (not revoked, not expired).

        For credentials minted from a token (they carry its id, never its secret): they stop working the
        moment the token does.

        Raises:
            AuthenticationError: unknown, revoked or expired token.
        """
        with self.db.read() as conn:
            row = conn.execute(
                select(t.tokens, t.accounts.c.name.label("user_name"), t.accounts.c.is_admin)
                .join(t.accounts, t.accounts.c.pk == t.tokens.c.user_pk).where(t.tokens.c.pk == token_id)
            ).one_or_none()
            if row is None or not self._token(row).active or not self._active_row(conn, row):
                raise AuthenticationError("the token this credential was made from is revoked or expired",
                                          hint="ask for a new one with a valid token")
            orgs = self.orgs_of(conn, row.user_pk)
        return Principal(row.user_name, row.role, bool(row.is_admin), orgs, row.name, row.pk)

    # -- bootstrap ------------------------------------------------------------------------------

    def bootstrap_admin(self, *, name: str = "admin", token: str | None = None) -> str | None:
        """Make sure a site admin exists; returns a new secret to show once, or None.

        With no account at all, creates ``name`` as admin with a write token (``token`` if given, else a
        random one, returned). With ``token`` given (``FMHUB_ADMIN_TOKEN``) and accounts present, makes
        sure that value is a write token of ``name`` (created as admin if missing), so automation can
        rely on it across restarts; returns None then since the caller already knows it.
        """
        name = validate_account_name(name)
        secret = _checked_secret(token)
        try:
            # One transaction: with several workers starting at once, exactly one creates the admin
            # and its token (the others find accounts, or lose the insert race and do nothing).
            with self.db.write() as conn:
                empty = conn.execute(select(func.count()).select_from(t.accounts)).scalar_one() == 0
                known = token is not None and conn.execute(
                    select(t.tokens.c.pk).where(t.tokens.c.lookup == _lookup(token))).first() is not None
                if not empty and (token is None or known):
                    return None
                now = _now()
                row = self._row(conn, name, required=False)
                if row is None:
                    user_pk = conn.execute(insert(t.accounts).values(
                        kind="user", name=name, key=name.lower(), fullname="Administrator", email=None,
                        is_admin=True, created_at=now)).inserted_primary_key[0]
                elif token is None:  # another worker created the admin since we counted (PostgreSQL)
                    return None
                elif row.kind != "user" or not row.is_admin:
                    raise ConfigError(f"{name!r} exists and is not a site administrator",
                                      hint="set FMHUB_ADMIN_USER to another name, or: fmhub user admin NAME")
                else:
                    user_pk = row.pk
                self._insert_token(conn, user_pk, "bootstrap", "write", secret, now, None)
        except SQLIntegrityError:  # another worker bootstrapped at the same moment
            return None
        return None if token is not None else secret

    # -- rows -----------------------------------------------------------------------------------

    @staticmethod
    def _row(conn: Connection, name: str, *, kind: str | None = None, required: bool = True):
        if not isinstance(name, str) or not name:
            raise InvalidInputError(f"invalid account name {name!r}")
        row = conn.execute(select(t.accounts).where(t.accounts.c.key == name.lower())).one_or_none()
        if row is not None and kind is not None and row.kind != kind:
            raise InvalidInputError(f"{row.name!r} is {'an organization' if row.kind == 'org' else 'a user'}, "
                                    f"not {'an organization' if kind == 'org' else 'a user'}")
        if row is None and required:
            raise AccountNotFoundError(kind or "account", name)
        return row

    @staticmethod
    def _account(row) -> Account:
        return Account(row.kind, row.name, row.fullname, row.email, bool(row.is_admin), _aware(row.created_at))

    @staticmethod
    def _token(row) -> TokenInfo:
        return TokenInfo(row.pk, row.user_name, row.name, row.role, _aware(row.created_at), _aware(row.expires_at),
                         _aware(row.last_used_at), _aware(row.revoked_at))
