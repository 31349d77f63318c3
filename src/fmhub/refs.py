"""``REPO[@REVISION]`` references, as every command and stage takes model and dataset versions."""

from __future__ import annotations

from fmhub.errors import InvalidInputError

__all__ = ["split_ref"]


def split_ref(ref: str, what: str) -> tuple[str, str | None]:
    """``"acme/bert@v1"`` → ``("acme/bert", "v1")``; no ``@`` → the default branch (``None``).

    ``what`` names the option in the error (``--model``), e.g. ``--data 'acme/news@'`` is not a reference.
    """
    if not isinstance(ref, str):
        raise InvalidInputError(f"{what} {ref!r} is not REPO or REPO@REVISION", hint="e.g. acme/name@v1")
    repo, sep, revision = ref.partition("@")
    if not repo or (sep and not revision):
        raise InvalidInputError(f"{what} {ref!r} is not REPO or REPO@REVISION", hint="e.g. acme/name@v1")
    return repo, revision or None
