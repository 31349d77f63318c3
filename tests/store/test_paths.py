"""Path, repo id, ref name and repo type rules: the one validator every user-given name goes through."""

from __future__ import annotations

import re
import unicodedata

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fmhub.errors import InvalidInputError, InvalidPathError, InvalidRepoIdError, InvalidRevisionNameError
from fmhub.store.paths import (
    MAX_PATH_BYTES,
    MAX_REF_NAME,
    MAX_REPO_PART,
    REPO_TYPES,
    validate_folder,
    validate_path,
    validate_ref_name,
    validate_repo_id,
    validate_repo_type,
)

FAST = settings(max_examples=100, deadline=None)

#: Characters that make a name display as something else (Trojan-source style), or that HFS+ ignores
#: when comparing names (git's list); never in a path.
BIDI_CONTROLS = frozenset("\u200c\u200d\u200e\u200f\u202a\u202b\u202c\u202d\u202e"
                          "\u2066\u2067\u2068\u2069\u206a\u206b\u206c\u206d\u206e\u206f\ufeff")
DEVICES = {"con", "prn", "aux", "nul", "conin$", "conout$"} | {f"{p}{n}" for p in ("com", "lpt") for n in "123456789¹²³"}


def name_is_acceptable(segment: str, first: bool) -> bool:
    """The name policy of docs/security.md, stated on one NFC segment (an oracle for the property tests)."""
    looks = unicodedata.normalize("NFKC", segment).casefold()
    return (
        len(segment.encode("utf-8")) <= 255
        and segment[-1] not in " ."
        and "/" not in looks and "\\" not in looks and not set(segment) & set("\u2044\u2215\u29f8\u29f5\u29f9\u2216\ufe68")
        and looks.strip(".") != ""
        and looks.split(":")[0].rstrip(" .") not in (".git", "git~1")
        and looks.split(".")[0].split(":")[0].rstrip(" ") not in DEVICES
        and segment != "~" and not (first and segment.startswith("~"))
    )


def assert_safe_path(path: str) -> None:
    """Every invariant an accepted repository path must hold."""
    assert isinstance(path, str) and path
    assert unicodedata.normalize("NFC", path) == path
    assert not path.startswith("/")
    assert "\\" not in path
    assert not any(unicodedata.category(ch) == "Cc" or ch in BIDI_CONTROLS for ch in path)
    assert len(path.encode("utf-8")) <= MAX_PATH_BYTES
    for i, segment in enumerate(path.split("/")):
        assert segment not in ("", ".", "..")
        assert name_is_acceptable(segment, i == 0)


def path_is_acceptable(raw: str) -> bool:
    """The rules of the docstring, stated on the NFC form (an oracle for the property tests)."""
    path = unicodedata.normalize("NFC", raw)
    if not path or path.startswith("/") or "\\" in path:
        return False
    if any(unicodedata.category(ch) in ("Cc", "Cs") or ch in BIDI_CONTROLS for ch in path):
        return False
    if len(path.encode("utf-8")) > MAX_PATH_BYTES:
        return False
    segments = path.split("/")
    if any(segment in ("", ".", "..") for segment in segments):
        return False
    if "/".join(segments[:2]).casefold() == ".cache/huggingface":
        return False
    return all(name_is_acceptable(segment, i == 0) for i, segment in enumerate(segments))


def assert_rejected(error: pytest.ExceptionInfo, cls: type[Exception]) -> None:
    assert isinstance(error.value, cls)
    assert isinstance(error.value, ValueError)
    assert str(error.value)


# -- paths: properties -------------------------------------------------------------------------------

# Segments drawn from letters, digits, marks (so NFD input shows up), punctuation and a few traps.
_segment_chars = st.characters(
    categories=("Lu", "Ll", "Lo", "Mn", "Nd", "Pd", "Po", "Zs", "Cc"),
    include_characters="./\\\x00\u202e\u2066",
    max_codepoint=0x2FFF,
)
_path_like = st.lists(st.text(_segment_chars, max_size=12), min_size=1, max_size=6).map("/".join)


@FAST
@given(st.one_of(st.text(max_size=40), _path_like))
def test_validate_path_accepts_exactly_the_safe_paths(raw: str) -> None:
    if path_is_acceptable(raw):
        path = validate_path(raw)
        assert path == unicodedata.normalize("NFC", raw)
        assert_safe_path(path)
        assert validate_path(path) == path  # idempotent
    else:
        with pytest.raises(InvalidPathError) as error:
            validate_path(raw)
        assert_rejected(error, InvalidPathError)
        assert error.value.path == raw and error.value.reason


_clean_segment = st.text(
    st.characters(categories=("L", "M", "N", "P", "S", "Zs"), exclude_characters="/\\"), min_size=1, max_size=20
).filter(lambda s: unicodedata.normalize("NFC", s) not in (".", "..")
         and name_is_acceptable(unicodedata.normalize("NFC", s), False)
         and name_is_acceptable(unicodedata.normalize("NFC", s), True))


@FAST
@given(st.lists(_clean_segment, min_size=1, max_size=8))
def test_clean_relative_paths_are_accepted_in_nfc(segments: list[str]) -> None:
    raw = "/".join(segments)
    path = validate_path(raw)
    assert path == unicodedata.normalize("NFC", raw)
    assert_safe_path(path)
    assert validate_path(path) == path
    assert validate_folder(path) == path
    assert validate_folder(path + "/") == path  # a folder may carry one trailing '/'
    assert validate_path(unicodedata.normalize("NFD", raw)) == path


@FAST
@given(st.lists(_clean_segment, min_size=1, max_size=4), st.integers(0, 3),
       st.sampled_from(["..", ".", "", "a\\b", "x\x00y", "\x7f"]))
def test_one_bad_segment_anywhere_rejects_the_path(segments: list[str], where: int, bad: str) -> None:
    segments.insert(where % (len(segments) + 1), bad)
    raw = "/".join(segments)
    with pytest.raises(InvalidPathError) as error:
        validate_path(raw)
    assert_rejected(error, InvalidPathError)


@FAST
@given(st.text(max_size=30))
def test_validate_folder_is_idempotent_when_it_accepts(raw: str) -> None:
    try:
        folder = validate_folder(raw)
    except InvalidPathError as error:
        assert str(error)
        return
    assert_safe_path(folder)
    assert validate_folder(folder) == folder
    assert validate_path(folder) == folder


# -- paths: cases ------------------------------------------------------------------------------------


@pytest.mark.parametrize("raw", [
    "../x", "x/..", "a/../b", "./a", "a/./b", ".", "..",
    "/etc/passwd", "/", "",
    "a//b", "a/", "//a",
    "a\\b", "..\\x", "C:\\Windows",
    "a\x00b", "a\nb", "tab\there", "del\x7f", "nel\x85",
    "lone\ud800surrogate",
])
def test_unsafe_paths_are_rejected(raw: str) -> None:
    with pytest.raises(InvalidPathError) as error:
        validate_path(raw)
    assert_rejected(error, InvalidPathError)
    assert repr(raw) in str(error.value)  # the message names the offending value


@pytest.mark.parametrize("raw", [None, 1, b"a.txt", ["a"]])
def test_non_strings_are_not_paths(raw: object) -> None:
    with pytest.raises(InvalidPathError):
        validate_path(raw)


@pytest.mark.parametrize("raw", ["a.txt", ".gitattributes", ".gitignore", ".github/workflows/ci.yml", "a/b/c.bin",
                                 "..a", "a b/c d", "日本/語.txt", "-dash", "a:b", "weird*name?", "git/config",
                                 "my.git/x", ".gitx", "console.json", "auxiliary", "com10", "a~", "x/~a", ".cache/x",
                                 "huggingface/.cache/a", "a.b.c"])
def test_ordinary_paths_are_returned_unchanged(raw: str) -> None:
    assert validate_path(raw) == raw


@pytest.mark.parametrize("raw", [
    # git's own folder, in any case or disguise: a file there runs commands after a download into a checkout
    ".git/config", ".git/hooks/post-checkout", "sub/.git/config", ".GIT/config", ".Git", "a/.gIt/HEAD",
    ".git./config", ".git /config", ".git. . /x", "git~1/config", "GIT~1/hooks/x", ".git::$INDEX_ALLOCATION/config",
    ".g\u200cit/config", ".\u200dgit/x", "\ufeff.git/config", "\uff0egit/config", ".\uff27\uff29\uff34/config",
    # Windows device names, with or without an extension, in any case
    "con", "CON", "aux.json", "a/nul.txt", "Com1", "lpt9.bin", "com\u00b9.txt", "conin$", "prn.tar.gz",
    # trailing dots and spaces (Windows drops them), a lone space
    "config.json.", "a/b.", " ", "a/ /b", "name ", "dir./x", "...", "a..",
    # look-alikes of '.', '..' and '/'
    "\u2025", "\u2024", "\u2026", "a/\u2025/b", "\uff0e\uff0e/x", "a\u2215b", "a\u2044b", "a\uff0fb", "a\uff3cb",
    # home folders
    "~", "~/x", "~root/.ssh/authorized_keys", "a/~/b",
    # huggingface_hub's local_dir metadata
    ".cache/huggingface/download/model.safetensors.metadata", ".Cache/HuggingFace/x",
    # a name longer than file systems store
    "a" * 256, "d/" + "é" * 128,
])
def test_names_the_policy_refuses(raw: str) -> None:
    with pytest.raises(InvalidPathError) as error:
        validate_path(raw)
    assert_rejected(error, InvalidPathError)
    assert error.value.reason


def test_stored_paths_take_only_the_structural_rules() -> None:
    from fmhub.store.paths import validate_stored_path

    # a name an older version let in can still be named (to delete it) ...
    assert validate_stored_path(".git/config") == ".git/config"
    assert validate_stored_path("aux.json") == "aux.json"
    # ... but never one that leaves the repository
    for raw in ("../x", "/etc/passwd", "a\x00b", "a\\b", ""):
        with pytest.raises(InvalidPathError):
            validate_stored_path(raw)


def test_nfd_input_is_normalized_to_nfc() -> None:
    nfd = "cafe\u0301/re\u0301sume\u0301.txt"
    nfc = unicodedata.normalize("NFC", nfd)
    assert nfd != nfc
    assert validate_path(nfd) == nfc
    assert validate_folder(nfd + "/") == nfc


def _long_path(unit: str, nbytes: int) -> str:
    """A path of exactly ``nbytes`` bytes of UTF-8 made of ``unit`` characters, in names of < 255 bytes."""
    width = len(unit.encode("utf-8"))
    path = "/".join([unit * (198 // width)] * 5)
    return path + unit * ((nbytes - len(path.encode("utf-8"))) // width)


def test_path_length_limit_is_in_utf8_bytes_after_normalization() -> None:
    longest = _long_path("a", MAX_PATH_BYTES)
    assert len(longest) == MAX_PATH_BYTES
    assert validate_path(longest) == longest
    with pytest.raises(InvalidPathError, match=str(MAX_PATH_BYTES)):
        validate_path(longest + "a")
    two_byte = _long_path("é", MAX_PATH_BYTES)
    assert len(two_byte.encode("utf-8")) == MAX_PATH_BYTES
    assert validate_path(two_byte) == two_byte
    with pytest.raises(InvalidPathError):
        validate_path(two_byte + "a")
    # NFD is longer than NFC: the rule applies to the path that is stored.
    nfd = unicodedata.normalize("NFD", two_byte)
    assert len(nfd.encode("utf-8")) > MAX_PATH_BYTES
    assert validate_path(nfd) == two_byte


def test_a_name_is_at_most_255_bytes() -> None:
    assert validate_path("d/" + "a" * 255) == "d/" + "a" * 255
    with pytest.raises(InvalidPathError, match="255"):
        validate_path("d/" + "a" * 256)


@pytest.mark.parametrize("raw", ["", "/", "a//", "../", "/a/"])
def test_bad_folders_are_rejected(raw: str) -> None:
    with pytest.raises(InvalidPathError):
        validate_folder(raw)


# -- repo ids ----------------------------------------------------------------------------------------

_PART = re.compile(r"[A-Za-z0-9]([A-Za-z0-9._-]*[A-Za-z0-9_])?")


def repo_id_is_acceptable(repo_id: str) -> bool:
    parts = repo_id.split("/")
    return (
        len(parts) == 2
        and all(0 < len(p) <= MAX_REPO_PART and _PART.fullmatch(p) for p in parts)
        and "--" not in repo_id and ".." not in repo_id and not repo_id.endswith(".git")
    )


_repo_id_like = st.text(st.sampled_from("aZ09._-/ég"), min_size=1, max_size=14)


@FAST
@given(st.one_of(_repo_id_like, st.text(max_size=12)))
def test_validate_repo_id_accepts_exactly_the_documented_ids(raw: str) -> None:
    if repo_id_is_acceptable(raw):
        repo_id = validate_repo_id(raw)
        assert repo_id == raw == unicodedata.normalize("NFC", raw)
        assert validate_repo_id(repo_id) == repo_id
    else:
        with pytest.raises(InvalidRepoIdError) as error:
            validate_repo_id(raw)
        assert_rejected(error, InvalidRepoIdError)
        assert error.value.repo_id == raw and error.value.reason


@pytest.mark.parametrize("raw", [
    "a--b/c", "a/b--c", "a/b..c", "a..b/c", "-a/b", "a/-b", ".a/b", "a/b.", "a/b-", "a/b.git", "a.git/b.git",
    "a", "a/b/c", "/a", "a/", "/", "", "a b/c", "a/é", "a/b\x00",
    "a/" + "b" * (MAX_REPO_PART + 1), "a" * (MAX_REPO_PART + 1) + "/b",
])
def test_bad_repo_ids_are_rejected(raw: str) -> None:
    with pytest.raises(InvalidRepoIdError) as error:
        validate_repo_id(raw)
    assert_rejected(error, InvalidRepoIdError)


@pytest.mark.parametrize("raw", ["acme/bert", "Acme/BERT-base", "a/b", "a_/b_", "1/2", "a.b/c.d", "a-b/c-d", "me/x.gi",
                                 "a" * MAX_REPO_PART + "/" + "b" * MAX_REPO_PART])
def test_good_repo_ids_are_returned_unchanged(raw: str) -> None:
    assert validate_repo_id(raw) == raw


@pytest.mark.parametrize("raw", [None, 3, b"a/b"])
def test_non_string_repo_ids_are_rejected(raw: object) -> None:
    with pytest.raises(InvalidRepoIdError):
        validate_repo_id(raw)


# -- ref names ---------------------------------------------------------------------------------------


def ref_name_is_acceptable(name: str) -> bool:
    return (
        0 < len(name) <= MAX_REF_NAME
        and re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9._/-]*", name) is not None
        and not any(bad in name for bad in ("..", "//", "/."))
        and not name.endswith(("/", ".", ".lock"))
        and not name.startswith("refs/")
        and re.fullmatch(r"[0-9a-fA-F]{40}", name) is None
    )


_ref_like = st.one_of(
    st.text(st.sampled_from("ab1._-/ ~^:"), min_size=1, max_size=12),
    st.just("refs/").flatmap(lambda p: st.text(st.sampled_from("ab/"), max_size=4).map(lambda s: p + s)),
    st.text(st.sampled_from("0123456789abcdefABCDEF"), min_size=39, max_size=41),
)


@FAST
@given(st.one_of(_ref_like, st.text(max_size=10)))
def test_validate_ref_name_accepts_exactly_the_documented_names(raw: str) -> None:
    if ref_name_is_acceptable(raw):
        name = validate_ref_name(raw)
        assert name == raw == unicodedata.normalize("NFC", raw)
        assert validate_ref_name(name) == name
    else:
        with pytest.raises(InvalidRevisionNameError) as error:
            validate_ref_name(raw)
        assert_rejected(error, InvalidRevisionNameError)


@pytest.mark.parametrize("raw", [
    "", "-x", ".x", "/x", "x/", "x.", "x.lock", "a..b", "a//b", "a/.b", "a b", "a~1", "a^", "a:b", "refs/heads/x",
    "refs/tags/v1", "0" * 40, "ABCDEF0123" * 4, "x" * (MAX_REF_NAME + 1), None,
])
def test_bad_ref_names_are_rejected(raw: object) -> None:
    with pytest.raises(InvalidRevisionNameError) as error:
        validate_ref_name(raw)
    assert_rejected(error, InvalidRevisionNameError)


@pytest.mark.parametrize("raw", ["main", "v1.0", "release/2024-01", "feature/x_y", "_private", "0" * 39, "abcdef1",
                                 "x" * MAX_REF_NAME])
def test_good_ref_names_are_returned_unchanged(raw: str) -> None:
    assert validate_ref_name(raw) == raw


# -- repo types --------------------------------------------------------------------------------------


@pytest.mark.parametrize("raw", REPO_TYPES)
def test_known_repo_types_are_accepted(raw: str) -> None:
    assert validate_repo_type(raw) == raw


@pytest.mark.parametrize("raw", ["space", "Model", "models", "", None, 1, ["model"]])
def test_unknown_repo_types_are_rejected(raw: object) -> None:
    with pytest.raises(InvalidInputError) as error:
        validate_repo_type(raw)
    assert_rejected(error, InvalidInputError)
