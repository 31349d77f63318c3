"""The one validator for every name a user gives the store: file paths, repo ids, ref names.

Each function returns the validated (normalized) value; callers use that value and never the raw
input again.
"""

from __future__ import annotations

import re
import unicodedata

from fmhub.errors import InvalidInputError, InvalidPathError, InvalidRepoIdError, InvalidRevisionNameError

__all__ = ["MAX_PATH_BYTES", "validate_path", "validate_folder", "validate_repo_id", "validate_ref_name", "validate_repo_type", "REPO_TYPES"]

MAX_PATH_BYTES = 1024
MAX_REPO_PART = 96
MAX_REF_NAME = 255
REPO_TYPES = ("model", "dataset")

_PART = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9_])?")
_REF = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._/-]*")
_HEX40 = re.compile(r"[0-9a-fA-F]{40}")


#: Bidirectional overrides and isolates make a name display differently from what it is
#: ("evil\u202egpj.exe" shows as "evilexe.jpg"), so paths may not contain them.
_BIDI_CONTROLS = frozenset("\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def _is_control(ch: str) -> bool:
    return unicodedata.category(ch) == "Cc" or ch in _BIDI_CONTROLS


def validate_path(path: object) -> str:
    """Validate a file path inside a repository and return its NFC-normalized form.

    Rules: a relative POSIX path; no ``..``, ``.`` or ``.git`` segment, no empty segment (``a//b``, a leading or
    trailing ``/``), no backslash, no NUL or other control character, at most 1024 bytes of UTF-8.

    Raises:
        InvalidPathError: naming the rule that failed.
    """
    if not isinstance(path, str):
        raise InvalidPathError(path, "a path must be a string")
    normalized = unicodedata.normalize("NFC", path)
    if not normalized:
        raise InvalidPathError(path, "the path is empty")
    if any(_is_control(ch) for ch in normalized):
        raise InvalidPathError(path, "control characters (including NUL and bidirectional overrides) are not allowed")
    if "\\" in normalized:
        raise InvalidPathError(path, "backslashes are not allowed; use '/'")
    if normalized.startswith("/"):
        raise InvalidPathError(path, "absolute paths are not allowed")
    try:
        size = len(normalized.encode("utf-8"))
    except UnicodeEncodeError:
        raise InvalidPathError(path, "the path is not valid Unicode (lone surrogate)") from None
    if size > MAX_PATH_BYTES:
        raise InvalidPathError(path, f"longer than {MAX_PATH_BYTES} bytes of UTF-8")
    for segment in normalized.split("/"):
        if segment == "":
            raise InvalidPathError(path, "empty path segment ('//' or a trailing '/')")
        if segment in (".", ".."):
            raise InvalidPathError(path, f"'{segment}' segments are not allowed")
        if segment.casefold() == ".git":  # as on the Hub: a checkout of the repo must never get a .git folder
            raise InvalidPathError(path, "files under a '.git/' folder are not allowed")
    return normalized


def validate_folder(path: object) -> str:
    """Validate a folder path (a trailing ``/`` is allowed); returns it without the trailing ``/``.

    An empty string or ``"/"`` is not a folder here: callers handle "the whole repo" explicitly.
    """
    if isinstance(path, str) and path.endswith("/") and len(path) > 1:
        path = path[:-1]
    return validate_path(path)


def validate_repo_id(repo_id: object) -> str:
    """Validate ``namespace/name`` by Hugging Face rules and return it.

    Each part starts with a letter or digit, holds letters, digits, ``.``, ``_``, ``-``, ends with a
    letter, digit or ``_``, and is at most 96 characters; ``--`` and ``..`` are not allowed anywhere,
    nor a trailing ``.git``.
    """
    if not isinstance(repo_id, str):
        raise InvalidRepoIdError(repo_id, "a repo id must be a string")
    parts = repo_id.split("/")
    if len(parts) != 2:
        raise InvalidRepoIdError(repo_id, "expected exactly one '/' between namespace and name")
    for part in parts:
        if not part:
            raise InvalidRepoIdError(repo_id, "namespace and name must not be empty")
        if len(part) > MAX_REPO_PART:
            raise InvalidRepoIdError(repo_id, f"each part must be at most {MAX_REPO_PART} characters")
        if not _PART.fullmatch(part):
            raise InvalidRepoIdError(
                repo_id, "each part must start with a letter or digit, use only letters, digits, '.', '_', '-', "
                "and not end with '.' or '-'"
            )
    if "--" in repo_id or ".." in repo_id:
        raise InvalidRepoIdError(repo_id, "'--' and '..' are not allowed")
    if repo_id.endswith(".git"):
        raise InvalidRepoIdError(repo_id, "a repo id must not end with '.git'")
    return repo_id


def validate_ref_name(name: object) -> str:
    """Validate a branch or tag name (git's rules, a little stricter) and return it."""
    if not isinstance(name, str) or not name:
        raise InvalidRevisionNameError(name, "the name is empty")
    if len(name) > MAX_REF_NAME:
        raise InvalidRevisionNameError(name, f"at most {MAX_REF_NAME} characters")
    if not _REF.fullmatch(name):
        raise InvalidRevisionNameError(name, "use letters, digits, '.', '_', '-' and '/' (not first)")
    if ".." in name or "//" in name or name.endswith(("/", ".", ".lock")) or "/." in name:
        raise InvalidRevisionNameError(name, "no '..', '//', '/.', and no trailing '/', '.' or '.lock'")
    if name.startswith("refs/"):
        raise InvalidRevisionNameError(name, "'refs/' is reserved; give the bare name")
    if _HEX40.fullmatch(name):
        raise InvalidRevisionNameError(name, "a 40-hex name would shadow a commit id")
    return name


def validate_repo_type(repo_type: object) -> str:
    """Validate a repo type (``model`` or ``dataset``) and return it."""
    if repo_type not in REPO_TYPES:
        raise InvalidInputError(f"invalid repo type {repo_type!r}", hint="use --repo-type model or --repo-type dataset")
    return repo_type  # type: ignore[return-value]
