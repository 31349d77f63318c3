"""The one validator for every name a user gives the store: file paths, repo ids, ref names.

Each function returns the validated (normalized) value; callers use that value and never the raw
input again.
"""

from __future__ import annotations

import re
import unicodedata

from fmhub.errors import InvalidInputError, InvalidPathError, InvalidRepoIdError, InvalidRevisionNameError

__all__ = ["MAX_PATH_BYTES", "MAX_SEGMENT_BYTES", "validate_path", "validate_stored_path", "validate_folder", "validate_repo_id", "validate_ref_name", "validate_repo_type", "REPO_TYPES"]

MAX_PATH_BYTES = 1024
MAX_REPO_PART = 96
MAX_REF_NAME = 255
REPO_TYPES = ("model", "dataset")

_PART = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9_])?")
_REF = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._/-]*")
_HEX40 = re.compile(r"[0-9a-fA-F]{40}")


#: Characters that do not show: bidirectional overrides and isolates make a name display differently
#: from what it is ("evil\u202egpj.exe" shows as "evilexe.jpg"), and HFS+ ignores the zero-width ones
#: when it compares names, so ".g\u200cit" *is* ".git" on a Mac. Git's ``is_hfs_dotgit`` list.
_INVISIBLE = frozenset(
    "\u200c\u200d\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
    "\u206a\u206b\u206c\u206d\u206e\u206f\ufeff"
)

#: Look-alikes of '/' and '\' that NFKC does not fold: a name showing a separator that is not one.
_SEPARATOR_LOOKALIKES = frozenset("\u2044\u2215\u29f8\u29f5\u29f9\u2216\ufe68")

#: Names Windows gives to devices, whatever the extension ("aux.json" opens the AUX device).
_WINDOWS_DEVICES = frozenset(
    {"con", "prn", "aux", "nul", "conin$", "conout$"}
    | {f"{port}{n}" for port in ("com", "lpt") for n in "123456789\u00b9\u00b2\u00b3"}
)

#: The longest file or folder name most file systems store (ext4, NTFS, APFS: 255).
MAX_SEGMENT_BYTES = 255

#: Where ``huggingface_hub`` keeps a ``local_dir``'s download metadata: a repo file there would
#: tell the downloader's client that files it never fetched are up to date.
_HF_LOCAL_METADATA = ".cache/huggingface"


def _is_control(ch: str) -> bool:
    return unicodedata.category(ch) == "Cc" or ch in _INVISIBLE


def _structure_problem(normalized: str) -> str | None:
    """The rules any stored path holds, whatever version wrote it: what keeps a path inside its folder."""
    if not normalized:
        return "the path is empty"
    if any(_is_control(ch) for ch in normalized):
        return "control characters (including NUL) and invisible or bidirectional formatting characters are not allowed"
    if "\\" in normalized:
        return "backslashes are not allowed; use '/'"
    if normalized.startswith("/"):
        return "absolute paths are not allowed"
    try:
        size = len(normalized.encode("utf-8"))
    except UnicodeEncodeError:
        return "the path is not valid Unicode (lone surrogate)"
    if size > MAX_PATH_BYTES:
        return f"longer than {MAX_PATH_BYTES} bytes of UTF-8"
    for segment in normalized.split("/"):
        if segment == "":
            return "empty path segment ('//' or a trailing '/')"
        if segment in (".", ".."):
            return f"'{segment}' segments are not allowed"
    return None


def _segment_problem(segment: str, first: bool) -> str | None:
    """The name policy for one path segment (see the table in docs/security.md)."""
    if len(segment.encode("utf-8")) > MAX_SEGMENT_BYTES:
        return f"the name {segment[:40]!r}... is longer than {MAX_SEGMENT_BYTES} bytes of UTF-8"
    if segment[-1] in " .":
        return (f"{segment!r} ends with a dot or a space, which Windows drops "
                "(so it would be the same file as the name without them)")
    # Compatibility folding shows what a name looks like: '\u2025' is '..', '\uff0egit' is '.git'.
    folded = unicodedata.normalize("NFKC", segment).casefold()
    if "/" in folded or "\\" in folded or any(ch in _SEPARATOR_LOOKALIKES for ch in segment):
        return f"{segment!r} holds a character that looks like a folder separator"
    if not folded.strip("."):
        return f"{segment!r} looks like '.' or '..'"
    # NTFS drops trailing dots and spaces and reads 'name:stream' as a stream of 'name'; 'git~1' is the
    # 8.3 short name of '.git'. Git refuses all of these (core.protectNTFS / protectHFS).
    base = folded.split(":", 1)[0].rstrip(" .")
    if base in (".git", "git~1"):
        return ("'.git' (in any case or disguise) is git's own folder: a file there runs commands "
                "on the machine of whoever downloads the repo into a git checkout")
    if folded.split(".", 1)[0].split(":", 1)[0].rstrip(" ") in _WINDOWS_DEVICES:
        return f"{segment!r} is a Windows device name (CON, PRN, AUX, NUL, COM1-9, LPT1-9), whatever its extension"
    if segment == "~" or (first and segment.startswith("~")):
        return f"{segment!r} would be read as a home folder by shells and path expansion"
    return None


def validate_path(path: object) -> str:
    """Validate a file path inside a repository and return its NFC-normalized form.

    Rules (the table in docs/security.md): a relative POSIX path; no ``..`` or ``.`` segment, no empty
    segment (``a//b``, a leading or trailing ``/``), no backslash, no NUL, control or invisible
    formatting character, at most 1024 bytes of UTF-8 and 255 per name; and no name that some file
    system or tool reads as something else: ``.git`` in any case or disguise (``.GIT``, ``.git.``,
    ``git~1``, ``.git::$DATA``, full-width letters), Windows device names (``con``, ``aux.json``),
    a trailing dot or space, look-alikes of ``.``, ``..`` or ``/``, a ``~`` home folder, and
    ``huggingface_hub``'s ``.cache/huggingface/`` download metadata.

    Raises:
        InvalidPathError: naming the rule that failed.
    """
    if not isinstance(path, str):
        raise InvalidPathError(path, "a path must be a string")
    normalized = unicodedata.normalize("NFC", path)
    problem = _structure_problem(normalized)
    if problem is None:
        segments = normalized.split("/")
        for i, segment in enumerate(segments):
            problem = _segment_problem(segment, first=i == 0)
            if problem is not None:
                break
    if problem is None and "/".join(segments[:2]).casefold() == _HF_LOCAL_METADATA:
        problem = "'.cache/huggingface/' is where huggingface_hub keeps a download folder's own metadata"
    if problem is not None:
        raise InvalidPathError(path, problem)
    return normalized


def validate_stored_path(path: object) -> str:
    """Validate a path already in a repository, written perhaps by an older fmhub; returns its NFC form.

    Only the structural rules of :func:`validate_path` (relative, no ``.``/``..``/empty segment, no
    control character, no backslash): what deleting a file needs, so that a name the policy now
    refuses can still be removed.

    Raises:
        InvalidPathError: naming the rule that failed.
    """
    if not isinstance(path, str):
        raise InvalidPathError(path, "a path must be a string")
    normalized = unicodedata.normalize("NFC", path)
    problem = _structure_problem(normalized)
    if problem is not None:
        raise InvalidPathError(path, problem)
    return normalized


def validate_folder(path: object, *, stored: bool = False) -> str:
    """Validate a folder path (a trailing ``/`` is allowed); returns it without the trailing ``/``.

    An empty string or ``"/"`` is not a folder here: callers handle "the whole repo" explicitly.
    ``stored=True`` applies :func:`validate_stored_path` instead of :func:`validate_path`.
    """
    if isinstance(path, str) and path.endswith("/") and len(path) > 1:
        path = path[:-1]
    return validate_stored_path(path) if stored else validate_path(path)


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
