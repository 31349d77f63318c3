"""Repo card metadata: the YAML front matter of ``README.md``, as on the Hugging Face Hub.

A card is ``---\\n<yaml>\\n---\\n<markdown>``. :func:`parse_card` splits it exactly as
``huggingface_hub.repocard`` does (same regex, CRLF included) and loads the YAML with PyYAML's safe
loader, but hardened for a server that parses cards uploaded by anyone: a size limit, a cap on the
node count once anchors/aliases are expanded, a nesting limit, and values made JSON-ready (the
metadata is served as JSON). :func:`validate_metadata` makes the type checks of the Hub's
``/api/validate-yaml``; :func:`card_tags` derives the tags a hub lists; :func:`render_card` writes a
card back.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import yaml
from yaml.constructor import ConstructorError, SafeConstructor
from yaml.events import AliasEvent, CollectionEndEvent, CollectionStartEvent, ScalarEvent
from yaml.reader import ReaderError

from fmhub.errors import InvalidInputError
from fmhub.store.paths import validate_repo_type

__all__ = [
    "Card",
    "ValidationResult",
    "parse_card",
    "validate_metadata",
    "card_tags",
    "render_card",
    "KNOWN_LICENSES",
    "MAX_METADATA_BYTES",
    "MAX_METADATA_NODES",
    "MAX_METADATA_DEPTH",
]

#: Front matter larger than this (UTF-8 bytes) is refused before any YAML parsing.
MAX_METADATA_BYTES = 1024 * 1024
#: Scalars + sequences + mappings (keys included) once every alias is expanded. Real cards, even
#: datasets with many configs and features, stay in the low thousands.
MAX_METADATA_NODES = 100_000
#: Nesting of sequences and mappings. Real cards nest a handful of levels (dataset_info features).
MAX_METADATA_DEPTH = 64

#: ``huggingface_hub.repocard.REGEX_YAML_BLOCK``, verbatim: the same text must split the same way
#: here and in the client. Note its quirks, which we keep: ``search`` with ``^`` and no MULTILINE
#: only matches at the very start (after optional whitespace); the closing ``---`` must be on its
#: own line (trailing spaces allowed); ``---\n---\n`` (nothing between) is *not* front matter.
_FRONT_MATTER = re.compile(r"^(\s*---(?:\r\n|\r|\n))([\S\s]*?)((?:\r\n|\r|\n)---[ \t]*(\r\n|\n|$))")

#: What PyYAML counts as a line break, to turn offsets into the line numbers it reports.
_LINE_BREAK = re.compile("\r\n|[\r\n\x85\u2028\u2029]")

_BOM = "\ufeff"

_EMPTY_METADATA_WARNING = "empty or missing yaml metadata in repo card"

#: License ids from https://huggingface.co/docs/hub/repositories-licenses (lower case, as the Hub
#: wants them). An id outside this list is a warning, not an error: the list grows over time.
KNOWN_LICENSES: frozenset[str] = frozenset({
    "apache-2.0", "mit", "openrail", "openrail++", "bigscience-openrail-m", "creativeml-openrail-m",
    "bigscience-bloom-rail-1.0", "bigcode-openrail-m", "afl-3.0", "artistic-2.0", "bsl-1.0", "bsd",
    "bsd-2-clause", "bsd-3-clause", "bsd-3-clause-clear", "c-uda", "cc", "cc0-1.0", "cc-by-2.0",
    "cc-by-2.5", "cc-by-3.0", "cc-by-4.0", "cc-by-sa-3.0", "cc-by-sa-4.0", "cc-by-nc-2.0", "cc-by-nc-3.0",
    "cc-by-nc-4.0", "cc-by-nd-4.0", "cc-by-nc-nd-3.0", "cc-by-nc-nd-4.0", "cc-by-nc-sa-2.0",
    "cc-by-nc-sa-3.0", "cc-by-nc-sa-4.0", "cdla-sharing-1.0", "cdla-permissive-1.0", "cdla-permissive-2.0",
    "wtfpl", "ecl-2.0", "epl-1.0", "epl-2.0", "etalab-2.0", "eupl-1.1", "eupl-1.2", "agpl-3.0", "gfdl",
    "gpl", "gpl-2.0", "gpl-3.0", "lgpl", "lgpl-2.1", "lgpl-3.0", "isc", "h-research", "intel-research",
    "lppl-1.3c", "ms-pl", "apple-ascl", "apple-amlr", "mpl-2.0", "odc-by", "odbl", "osl-3.0", "postgresql",
    "ofl-1.1", "ncsa", "unlicense", "zlib", "pddl", "lgpl-lr", "deepfloyd-if-license",
    "fair-noncommercial-research-license", "llama2", "llama3", "llama3.1", "llama3.2", "llama3.3", "llama4",
    "gemma", "other", "unknown",
})


# -- parsing ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Card:
    """A parsed repo card.

    ``metadata`` is the front matter mapping (``{}`` without front matter), JSON-ready: string keys,
    dates as ISO strings, no NaN/Infinity. ``body`` is the markdown after the closing ``---``.
    """

    metadata: dict[str, Any]
    body: str


def parse_card(text: str) -> Card:
    """Split a ``README.md`` into its YAML metadata and markdown body.

    Text without front matter is all body, with ``metadata == {}`` (as ``huggingface_hub.RepoCard``).
    A leading byte order mark is ignored (Windows editors add one).

    Raises:
        InvalidInputError: the front matter is not valid YAML (the message gives the line and column
            in the card), is not a mapping, is over :data:`MAX_METADATA_BYTES`, expands to more
            than :data:`MAX_METADATA_NODES` nodes, or nests deeper than :data:`MAX_METADATA_DEPTH`.

    Example:
        >>> card = parse_card("---\\nlicense: mit\\ntags: [text-classification]\\n---\\n# My model\\n")
        >>> card.metadata
        {'license': 'mit', 'tags': ['text-classification']}
        >>> card.body
        '# My model\\n'
    """
    if text.startswith(_BOM):
        text = text[len(_BOM):]
    match = _FRONT_MATTER.search(text)
    if match is None:
        return Card(metadata={}, body=text)
    block = match.group(2)
    # PyYAML numbers lines from 0 inside the block; the user wants lines of README.md.
    line_offset = len(_LINE_BREAK.findall(match.group(1)))
    _check_size(block)
    data = _load_yaml(block, line_offset)
    if data is None:  # "---\n\n---": front matter present but empty, as huggingface_hub reads it
        data = {}
    if not isinstance(data, dict):
        raise InvalidInputError(
            f"card metadata must be a YAML mapping (key: value lines), got {_kind(data)} "
            f"at line {line_offset + 1}",
            hint="write the metadata as 'key: value' lines between the two '---' lines",
        )
    return Card(metadata=data, body=text[match.end():])


def _check_size(block: str) -> None:
    try:
        size = len(block.encode("utf-8"))
    except UnicodeEncodeError as exc:  # a lone surrogate: the text did not come from valid UTF-8
        raise InvalidInputError(f"card metadata is not valid UTF-8 text: {exc.reason}") from exc
    if size > MAX_METADATA_BYTES:
        raise InvalidInputError(
            f"card metadata is {size:,} bytes; the limit is {MAX_METADATA_BYTES:,}",
            hint="keep large tables (results, features) in files of the repository, not in README.md",
        )


#: libyaml when PyYAML was built with it (3-7x faster here); the pure-Python twin otherwise.
#: Both are the *safe* loader: only standard YAML tags, never Python objects.
_SafeLoader: type = yaml.CSafeLoader if yaml.__with_libyaml__ else yaml.SafeLoader  # type: ignore[attr-defined]


class _CardLoader(_SafeLoader):  # type: ignore[misc, valid-type]
    """``yaml.safe_load``'s loader, with the few types JSON cannot carry turned into ones it can.

    Only constructors are overridden (on this subclass: ``add_constructor`` copies the table, so
    ``yaml.SafeLoader`` itself is untouched); parsing and tag resolution are PyYAML's own, so the
    values match what ``huggingface_hub`` reads with ``yaml.safe_load``, up to these conversions.
    """


def _construct_timestamp(loader: Any, node: yaml.Node) -> str:
    # YAML 1.1 turns unquoted 2024-01-31 into a date; JSON has no dates, so the metadata carries the
    # ISO string. A date-shaped but impossible value (2024-13-45) raises ValueError in PyYAML with
    # no position: re-raise it as a YAML error that knows its line.
    try:
        value = SafeConstructor.construct_yaml_timestamp(loader, node)
    except ValueError as exc:
        raise ConstructorError(None, None, f"invalid date {node.value!r}: {exc}", node.start_mark) from exc
    return value.isoformat()


def _construct_float(loader: Any, node: yaml.Node) -> float | None:
    # JSON has no NaN/Infinity (Starlette refuses them); the Hub serializes them with JavaScript's
    # JSON.stringify, which writes null, so .nan/.inf become None here too.
    value = SafeConstructor.construct_yaml_float(loader, node)
    return value if math.isfinite(value) else None


def _construct_int(loader: Any, node: yaml.Node) -> int:
    # Python refuses int() on more than 4300 digits (a DoS guard) with a bare ValueError.
    try:
        return SafeConstructor.construct_yaml_int(loader, node)
    except ValueError as exc:
        raise ConstructorError(None, None, f"invalid integer: {exc}", node.start_mark) from exc


def _construct_binary(loader: Any, node: yaml.Node) -> Any:
    raise ConstructorError(None, None, "binary values (!!binary) are not allowed in card metadata", node.start_mark)


def _construct_set(loader: Any, node: yaml.Node) -> list[Any]:
    # A Python set is not JSON (and loses the written order): a !!set becomes the list of its members.
    return list(loader.construct_mapping(node))


_CardLoader.add_constructor("tag:yaml.org,2002:timestamp", _construct_timestamp)
_CardLoader.add_constructor("tag:yaml.org,2002:float", _construct_float)
_CardLoader.add_constructor("tag:yaml.org,2002:int", _construct_int)
_CardLoader.add_constructor("tag:yaml.org,2002:binary", _construct_binary)
_CardLoader.add_constructor("tag:yaml.org,2002:set", _construct_set)


def _load_yaml(block: str, line_offset: int) -> Any:
    """Load one YAML document safely and return JSON-ready data (or None for an empty block)."""
    try:
        _check_structure(block, line_offset)
        loader = _CardLoader(block)
        try:
            data = loader.get_single_data()
        finally:
            loader.dispose()
    except InvalidInputError:
        raise
    except yaml.YAMLError as exc:
        raise _yaml_error(exc, block, line_offset) from exc
    except (ValueError, RecursionError) as exc:  # a safety net: no third-party error leaks raw
        raise InvalidInputError(f"invalid YAML in card metadata: {exc}") from exc
    return _jsonable(data)


def _check_structure(block: str, line_offset: int) -> None:
    """Refuse alias bombs, reference cycles and deep nesting, from the event stream, before composing.

    Why events and not the composed node graph: PyYAML (and libyaml) build aliases as shared
    references, so a "billion laughs" costs nothing to load but explodes in everything that walks
    the data afterwards (JSON encoding, validation, tag derivation). So we count what a walk would
    see: every scalar/sequence/mapping event is one node, and an alias counts the full size of the
    node it names. Stopping as soon as the running total passes :data:`MAX_METADATA_NODES` bounds
    the work by the limit, not by the expansion (a bomb is refused after a few hundred events).
    Aliases stay allowed under the limit, because real cards use anchors for repeated blocks.

    The same pass bounds nesting: libyaml's composer recurses in C and crashes the process
    (SIGSEGV) past a few tens of thousands of levels, and PyYAML's recurses in Python; the parser
    that produces events keeps an explicit stack, so it is safe to run first. An alias to a node
    still open (``&a [*a]``) makes a cycle, which no JSON can hold: refused as well.
    """
    sizes: dict[str, int] = {}     # anchor -> expanded node count of the finished node it names
    open_nodes: list[tuple[str | None, int]] = []  # (anchor, total before it) per open collection
    total = 0

    def refuse(message: str, event: yaml.Event) -> InvalidInputError:
        return InvalidInputError(
            f"card metadata {message} (at line {line_offset + event.start_mark.line + 1})",
            hint="write the values out, without deep nesting or anchors (&name) reused through aliases (*name)",
        )

    for event in yaml.parse(block, Loader=_SafeLoader):
        if isinstance(event, ScalarEvent):
            total += 1
            if event.anchor is not None:
                sizes[event.anchor] = 1
        elif isinstance(event, CollectionStartEvent):
            open_nodes.append((event.anchor, total))
            total += 1
            if len(open_nodes) > MAX_METADATA_DEPTH:
                raise refuse(f"nests deeper than {MAX_METADATA_DEPTH} levels", event)
        elif isinstance(event, CollectionEndEvent):
            anchor, before = open_nodes.pop()
            if anchor is not None:
                sizes[anchor] = total - before
        elif isinstance(event, AliasEvent):
            if any(anchor == event.anchor for anchor, _ in open_nodes):
                raise refuse(f"has an alias *{event.anchor} inside the node it names (a cycle)", event)
            total += sizes.get(event.anchor, 1)  # undefined: the composer reports it with its position
        else:
            continue
        if total > MAX_METADATA_NODES:
            raise refuse(f"expands to more than {MAX_METADATA_NODES:,} values once aliases are expanded", event)


def _yaml_error(exc: yaml.YAMLError, block: str, line_offset: int) -> InvalidInputError:
    hint = "fix the YAML between the two '---' lines at the top of README.md"
    if isinstance(exc, yaml.MarkedYAMLError):
        mark = exc.problem_mark or exc.context_mark
        problem = exc.problem or exc.context or "invalid YAML"
        message = "invalid YAML in card metadata"
        if mark is not None:
            message += f" at line {line_offset + mark.line + 1}, column {mark.column + 1}"
        message += f": {problem}"
        if exc.problem and exc.context and exc.context_mark is not None:
            message += (f" ({exc.context} at line {line_offset + exc.context_mark.line + 1},"
                        f" column {exc.context_mark.column + 1})")
        return InvalidInputError(message, hint=hint)
    if isinstance(exc, ReaderError):
        # Its position is a byte offset under libyaml and a character offset in pure Python: find
        # the offending character instead.
        index = block.find(chr(exc.character)) if isinstance(exc.character, int) and exc.character >= 0 else -1
        where = ""
        if index >= 0:
            line, column = _line_col(block, index)
            where = f" at line {line_offset + line + 1}, column {column + 1}"
        return InvalidInputError(f"invalid YAML in card metadata{where}: {exc.reason} "
                                 f"(character {exc.character:#06x})", hint=hint)
    return InvalidInputError(f"invalid YAML in card metadata: {exc}", hint=hint)


def _line_col(text: str, index: int) -> tuple[int, int]:
    """0-based (line, column) of ``text[index]``, counting line breaks as PyYAML does."""
    line, start = 0, 0
    for brk in _LINE_BREAK.finditer(text, 0, index):
        line, start = line + 1, brk.end()
    return line, index - start


def _jsonable(value: Any) -> Any:
    """A fresh copy of loaded YAML that ``json.dumps`` accepts and whose mapping keys are strings.

    Fresh: aliases load as shared objects, and a caller editing one occurrence must not edit the
    others. Recursion is bounded by :data:`MAX_METADATA_DEPTH` (checked before loading).
    """
    if isinstance(value, dict):
        return {_json_key(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):  # tuples come from !!omap and !!pairs
        return [_jsonable(v) for v in value]
    return value


def _json_key(key: Any) -> str:
    # YAML keys may be numbers, booleans or null (``1: x``, ``yes: x``); JSON keys are strings.
    # Spell them as json.dumps would (true, null, 1.5), so the Python dict and the JSON agree.
    return key if isinstance(key, str) else json.dumps(key)


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    return f"a {type(value).__name__}"


# -- validation -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ValidationResult:
    """What :func:`validate_metadata` found. Errors block a commit; warnings are shown only.

    Shaped like the Hub's ``/api/validate-yaml`` answer, which lists ``{"message": ...}`` objects
    under ``errors`` and ``warnings``.
    """

    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when there are no errors (warnings allowed)."""
        return not self.errors


#: Fields the Hub accepts as one string or a list of strings, for every repo type.
_STRING_OR_LIST_FIELDS = ("tags", "language", "datasets", "metrics", "base_model")
#: Dataset card fields (from ``huggingface_hub.DatasetCardData``), same rule.
_DATASET_STRING_OR_LIST_FIELDS = (
    "task_categories", "task_ids", "size_categories", "annotations_creators", "language_creators",
    "multilinguality", "source_datasets", "paperswithcode_id",
)
#: Fields that must be a single string.
_STRING_FIELDS = ("library_name", "pipeline_tag", "license_name", "license_link", "pretty_name", "model_name")


def validate_metadata(metadata: dict[str, Any], repo_type: str) -> ValidationResult:
    """Check card metadata the way the Hub's ``/api/validate-yaml`` does, for the fields that matter.

    Type checks (errors): ``license`` a string (or, for datasets, a list of strings); ``tags``,
    ``language``, ``datasets``, ``metrics``, ``base_model`` and the dataset list fields a string or
    a list of strings; ``library_name`` and ``pipeline_tag`` strings; ``model-index`` a list of
    ``{name, results}`` entries whose results have ``task.type``, ``dataset.type``, ``dataset.name``
    and ``metrics`` with ``type`` and ``value`` (what ``huggingface_hub`` needs to read them back);
    for datasets, ``dataset_info`` a mapping or a list of mappings and ``configs`` a list of
    mappings with a unique ``config_name``. Unknown keys are allowed; a null value counts as unset.

    Warnings: empty metadata, a license id outside :data:`KNOWN_LICENSES`, ``license: other``
    without ``license_name``/``license_link``.

    Raises:
        InvalidInputError: ``repo_type`` is not a repo type.

    Example:
        >>> result = validate_metadata({"license": "mit", "tags": "nlp", "library_name": 3}, "model")
        >>> result.ok, result.errors
        (False, ['"library_name" must be a string, got a number'])
        >>> validate_metadata({}, "model").warnings
        ['empty or missing yaml metadata in repo card']
    """
    repo_type = validate_repo_type(repo_type)
    errors: list[str] = []
    warnings: list[str] = []
    if not isinstance(metadata, dict):
        return ValidationResult(errors=[f"card metadata must be a mapping, got {_kind(metadata)}"])
    if not metadata:
        return ValidationResult(warnings=[_EMPTY_METADATA_WARNING])

    def present(key: str) -> bool:
        # ``tags:`` with nothing after it loads as None: huggingface_hub reads that as unset, so do we.
        return metadata.get(key) is not None

    string_or_list = _STRING_OR_LIST_FIELDS + (_DATASET_STRING_OR_LIST_FIELDS if repo_type == "dataset" else ())
    for key in string_or_list:
        if present(key):
            _check_string_or_list(key, metadata[key], errors)
    for key in _STRING_FIELDS:
        if present(key) and not isinstance(metadata[key], str):
            errors.append(f'"{key}" must be a string, got {_kind(metadata[key])}{_bool_hint(metadata[key])}')

    if present("license"):
        _check_license(metadata, repo_type, errors, warnings)
    if present("model-index"):
        _check_model_index(metadata["model-index"], errors)
    if repo_type == "dataset":
        if present("dataset_info"):
            _check_dataset_info(metadata["dataset_info"], errors)
        if present("configs"):
            _check_configs(metadata["configs"], errors)
    return ValidationResult(errors=errors, warnings=warnings)


def _bool_hint(value: Any) -> str:
    # YAML 1.1 reads unquoted yes/no/on/off as booleans: ``language: no`` (Norwegian) is False.
    if isinstance(value, bool) or (isinstance(value, list) and any(isinstance(v, bool) for v in value)):
        return " (YAML reads unquoted yes/no/on/off/true/false as booleans: quote the value, e.g. 'no')"
    return ""


def _check_string_or_list(key: str, value: Any, errors: list[str]) -> None:
    if isinstance(value, str):
        return
    if isinstance(value, list):
        for index, item in enumerate(value):
            if not isinstance(item, str):
                errors.append(f'"{key}[{index}]" must be a string, got {_kind(item)}{_bool_hint(item)}')
        return
    errors.append(f'"{key}" must be a string or a list of strings, got {_kind(value)}{_bool_hint(value)}')


def _check_license(metadata: dict[str, Any], repo_type: str, errors: list[str], warnings: list[str]) -> None:
    value = metadata["license"]
    if repo_type == "dataset":  # a dataset may combine sources under several licenses
        if not isinstance(value, (str, list)):
            errors.append(f'"license" must be a string or a list of strings, got {_kind(value)}')
            return
        ids = [value] if isinstance(value, str) else value
        for index, item in enumerate(ids):
            if not isinstance(item, str):
                errors.append(f'"license[{index}]" must be a string, got {_kind(item)}')
        ids = [item for item in ids if isinstance(item, str)]
    elif isinstance(value, str):
        ids = [value]
    else:
        errors.append(f'"license" must be a string, got {_kind(value)}')
        return
    for license_id in ids:
        if license_id not in KNOWN_LICENSES:
            suggestion = f" (did you mean {license_id.lower()!r}?)" if license_id.lower() in KNOWN_LICENSES else ""
            warnings.append(f'"license" {license_id!r} is not a known license id{suggestion}')
    if "other" in ids and not (metadata.get("license_name") or metadata.get("license_link")):
        warnings.append('"license" is \'other\': add "license_name" and "license_link" to say which license')


def _check_model_index(value: Any, errors: list[str]) -> None:
    if not isinstance(value, list):
        errors.append(f'"model-index" must be a list, got {_kind(value)}')
        return
    for i, entry in enumerate(value):
        where = f"model-index[{i}]"
        if not isinstance(entry, dict):
            errors.append(f'"{where}" must be a mapping, got {_kind(entry)}')
            continue
        _require(entry, "name", str, where, errors)
        results = _require(entry, "results", list, where, errors)
        for j, result in enumerate(results or []):
            rwhere = f"{where}.results[{j}]"
            if not isinstance(result, dict):
                errors.append(f'"{rwhere}" must be a mapping, got {_kind(result)}')
                continue
            task = _require(result, "task", dict, rwhere, errors)
            if task is not None:
                _require(task, "type", str, f"{rwhere}.task", errors)
            dataset = _require(result, "dataset", dict, rwhere, errors)
            if dataset is not None:
                _require(dataset, "type", str, f"{rwhere}.dataset", errors)
                _require(dataset, "name", str, f"{rwhere}.dataset", errors)
            metrics = _require(result, "metrics", list, rwhere, errors)
            for k, metric in enumerate(metrics or []):
                mwhere = f"{rwhere}.metrics[{k}]"
                if not isinstance(metric, dict):
                    errors.append(f'"{mwhere}" must be a mapping, got {_kind(metric)}')
                    continue
                _require(metric, "type", str, mwhere, errors)
                _require(metric, "value", object, mwhere, errors)


_TYPE_NAMES = {str: "a string", list: "a list", dict: "a mapping"}


def _require(mapping: dict[str, Any], key: str, kind: type, where: str, errors: list[str]) -> Any:
    """``mapping[key]`` when present and of ``kind``; else record the error and return None."""
    if mapping.get(key) is None:
        errors.append(f'"{where}.{key}" is required')
        return None
    value = mapping[key]
    if not isinstance(value, kind):
        errors.append(f'"{where}.{key}" must be {_TYPE_NAMES[kind]}, got {_kind(value)}')
        return None
    return value


def _check_dataset_info(value: Any, errors: list[str]) -> None:
    # One mapping for a single-config dataset, a list of them (each with config_name) otherwise.
    if isinstance(value, dict):
        return
    if not isinstance(value, list):
        errors.append(f'"dataset_info" must be a mapping or a list of mappings, got {_kind(value)}')
        return
    for i, item in enumerate(value):
        if not isinstance(item, dict):
            errors.append(f'"dataset_info[{i}]" must be a mapping, got {_kind(item)}')


def _check_configs(value: Any, errors: list[str]) -> None:
    if not isinstance(value, list):
        errors.append(f'"configs" must be a list, got {_kind(value)}')
        return
    seen: set[str] = set()
    for i, item in enumerate(value):
        if not isinstance(item, dict):
            errors.append(f'"configs[{i}]" must be a mapping, got {_kind(item)}')
            continue
        name = _require(item, "config_name", str, f"configs[{i}]", errors)
        if name is not None:
            if name in seen:  # the datasets library cannot tell two configs of the same name apart
                errors.append(f'"configs[{i}].config_name" {name!r} is used by another config')
            seen.add(name)


# -- tags -------------------------------------------------------------------------------------------


def card_tags(metadata: dict[str, Any], repo_type: str) -> list[str]:
    """The tags a hub lists for a repo, derived from its card as the Hugging Face Hub does.

    In order, de-duplicated, skipping values that are not non-empty strings (so it never fails on
    metadata :func:`validate_metadata` would reject):

    ========================  ====================================  ===========================
    metadata                  model                                 dataset
    ========================  ====================================  ===========================
    ``tags``                  as is                                 as is
    ``library_name``          as is                                 as is
    ``pipeline_tag``          as is                                 as is
    ``language``              as is (``en``)                        ``language:en``
    ``task_categories``       --                                    ``task_categories:<x>``
    ``license``               ``license:<id>``                      ``license:<id>``
    ``datasets``              ``dataset:<id>``                      --
    ``base_model``            ``base_model:<id>``                   ``base_model:<id>``
    ========================  ====================================  ===========================

    Example:
        >>> card_tags({"tags": ["bert"], "license": "mit", "datasets": ["ag_news"], "language": "en"}, "model")
        ['bert', 'en', 'license:mit', 'dataset:ag_news']
    """
    repo_type = validate_repo_type(repo_type)
    if not isinstance(metadata, dict):
        return []
    is_dataset = repo_type == "dataset"

    def strings(key: str, prefix: str = "") -> list[str]:
        return [prefix + s for s in _strings(metadata.get(key))]

    tags = strings("tags") + strings("library_name") + strings("pipeline_tag")
    tags += strings("language", "language:" if is_dataset else "")
    if is_dataset:
        tags += strings("task_categories", "task_categories:")
    tags += strings("license", "license:")
    if not is_dataset:
        tags += strings("datasets", "dataset:")
    tags += strings("base_model", "base_model:")
    return list(dict.fromkeys(tags))


def _strings(value: Any) -> Iterable[str]:
    items = value if isinstance(value, list) else [value]
    for item in items:
        if isinstance(item, str) and item.strip():
            yield item.strip()


# -- rendering --------------------------------------------------------------------------------------


class _CardDumper(yaml.SafeDumper):
    """``yaml.safe_dump``'s dumper, with one fix so that what it writes reads back the same.

    PyYAML writes a string holding a Unicode line break (NEL U+0085, LS U+2028, PS U+2029) in
    single quotes, where YAML folds the break into a space: ``{"\\x85": 1}`` would come back as
    ``{" ": 1}``. Double quotes escape them (``\\N``, ``\\L``, ``\\P``) instead.
    """


def _represent_str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = '"' if any(ch in value for ch in "\x85\u2028\u2029") else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_CardDumper.add_representer(str, _represent_str)


def render_card(metadata: dict[str, Any], body: str) -> str:
    """Write a card: YAML front matter (``yaml.safe_dump``, keys in the given order, Unicode as is),
    then the body.

    ``parse_card(render_card(metadata, body)) == Card(metadata, body)`` for JSON-like metadata
    (string keys; strings, finite numbers, booleans, None, lists, mappings) and any body. Empty
    metadata writes the body alone, unless the body would then read as front matter itself.

    Raises:
        InvalidInputError: ``metadata`` is not a mapping, or holds values YAML cannot represent.

    Example:
        >>> render_card({"license": "mit", "tags": ["nlp"]}, "# My model\\n")
        '---\\nlicense: mit\\ntags:\\n- nlp\\n---\\n# My model\\n'
    """
    if not isinstance(metadata, dict):
        raise InvalidInputError(f"card metadata must be a mapping, got {_kind(metadata)}")
    if not metadata:
        if not body.startswith(_BOM) and _FRONT_MATTER.search(body) is None:
            return body
        # An explicit empty block keeps a body that starts with '---' lines from being read as
        # metadata. Not '---\n---\n': huggingface_hub's regex needs a line between the markers.
        return f"---\n\n---\n{body}"
    try:
        text = yaml.dump(metadata, Dumper=_CardDumper, sort_keys=False, allow_unicode=True)
    except yaml.YAMLError as exc:  # RepresenterError: a value that is not plain data
        raise InvalidInputError(f"card metadata cannot be written as YAML: {exc}") from exc
    # safe_dump ends with a newline and indents continuation lines of multi-line strings, so no
    # line of its output is a bare '---' that would close the block early.
    return f"---\n{text}---\n{body}"
