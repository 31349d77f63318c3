"""Accounts: users, organizations with member roles, scoped access tokens (stored hashed), principals.

Example:
    >>> from fmhub.accounts import Accounts
    >>> accounts = Accounts(store.db)
    >>> accounts.create_user("alice")
    >>> info, secret = accounts.create_token("alice", name="ci", role="write")   # show `secret` once
"""

from fmhub.accounts._accounts import (
    ORG_ROLES,
    RESERVED_NAMES,
    TOKEN_PREFIX,
    TOKEN_ROLES,
    Account,
    Accounts,
    Member,
    Principal,
    TokenInfo,
    validate_account_name,
)

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
