"""Repo card metadata: parsing as huggingface_hub does, hardening, validation, tags and rendering."""

from __future__ import annotations

import json
import time

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from huggingface_hub import EvalResult, ModelCard, ModelCardData
from huggingface_hub.repocard import REGEX_YAML_BLOCK

from fmhub.cards import (
    MAX_METADATA_BYTES,
    MAX_METADATA_DEPTH,
    MAX_METADATA_NODES,
    Card,
    ValidationResult,
    card_tags,
    parse_card,
    render_card,
    validate_metadata,
)
from fmhub.errors import InvalidInputError

FAST = settings(max_examples=100, deadline=None)


# -- splitting: same as huggingface_hub ------------------------------------------------------------

SPLIT_CASES = {
    "no front matter": "# Title\n\nText.\n",
    "empty text": "",
    "empty front matter": "---\n\n---\n# Title\n",
    "markers with nothing between (not front matter for huggingface_hub)": "---\n---\n# Title\n",
    "crlf": "---\r\nlicense: mit\r\ntags:\r\n- a\r\n---\r\n# Title\r\n",
    "cr only": "---\rlicense: mit\r---\r# Title\r",
    "only front matter, no final newline": "---\nlicense: mit\n---",
    "only front matter": "---\nlicense: mit\n---\n",
    "leading blank lines": "\n\n  ---\nlicense: mit\n---\nbody",
    "trailing spaces after closing marker": "---\nlicense: mit\n---  \t\nbody",
    "--- inside the body": "---\nlicense: mit\n---\n# Title\n\n---\n\nmore: text\n---\n",
    "closing marker followed by text is not a closing marker (so: two YAML documents)":
        "---\nlicense: mit\n--- no\nx: 1\n---\nbody",
    "front matter not at the start": "# Title\n---\nlicense: mit\n---\n",
    "unterminated front matter": "---\nlicense: mit\n# Title\n",
}


@pytest.mark.parametrize("text", SPLIT_CASES.values(), ids=SPLIT_CASES.keys())
def test_splits_like_huggingface_hub(text: str) -> None:
    match = REGEX_YAML_BLOCK.search(text)
    try:
        expected = Card((yaml.safe_load(match.group(2)) or {}) if match else {}, text[match.end():] if match else text)
    except yaml.YAMLError:  # huggingface_hub fails on this card: so do we, with our error
        with pytest.raises(InvalidInputError):
            parse_card(text)
    else:
        assert parse_card(text) == expected


def test_split_examples() -> None:
    assert parse_card("# Title\n") == Card({}, "# Title\n")
    assert parse_card("---\n\n---\n# T") == Card({}, "# T")
    assert parse_card("---\n---\n# T") == Card({}, "---\n---\n# T")
    assert parse_card("---\r\nlicense: mit\r\n---\r\n# T\r\n") == Card({"license": "mit"}, "# T\r\n")
    assert parse_card("---\nlicense: mit\n---") == Card({"license": "mit"}, "")
    body = "# T\n\n---\n\nnot: metadata\n---\n"
    assert parse_card("---\nlicense: mit\n---\n" + body) == Card({"license": "mit"}, body)


def test_byte_order_mark_is_ignored() -> None:
    assert parse_card("\ufeff---\nlicense: mit\n---\nbody") == Card({"license": "mit"}, "body")


# -- errors ----------------------------------------------------------------------------------------


def test_invalid_yaml_reports_line_and_column_in_the_card() -> None:
    text = "\n---\nlicense: mit\ntags: [a, b\nlanguage: en\n---\nbody\n"
    with pytest.raises(InvalidInputError) as info:
        parse_card(text)
    message = str(info.value)
    # README line 4 holds 'tags: [a, b' (the flow sequence opens at column 7); PyYAML notices the
    # problem at line 5. Lines count from the top of README.md, not of the YAML block.
    assert "invalid YAML in card metadata at line 5, column 9" in message
    assert "flow sequence at line 4, column 7" in message
    assert isinstance(info.value, ValueError)  # callers catching ValueError keep working


def test_invalid_yaml_line_numbers_with_crlf() -> None:
    with pytest.raises(InvalidInputError, match=r"at line 3, column 7: mapping values are not allowed"):
        parse_card("---\r\nlicense: mit\r\nbad: a: b\r\n---\r\n")


def test_control_character_reports_its_line() -> None:
    with pytest.raises(InvalidInputError, match=r"at line 3, column 6: .*control characters"):
        parse_card("---\na: 1\nb: 'x\x00'\n---\n")


def test_impossible_date_reports_its_line() -> None:
    with pytest.raises(InvalidInputError, match=r"at line 3, column 7: invalid date '2024-13-45'"):
        parse_card("---\na: 1\ndate: 2024-13-45\n---\n")


@pytest.mark.parametrize("yaml_text, kind", [("- a\n- b", "a list"), ("just text", "a string"), ("42", "a number")])
def test_non_mapping_front_matter_is_refused(yaml_text: str, kind: str) -> None:
    with pytest.raises(InvalidInputError, match=f"must be a YAML mapping .*got {kind} at line 2"):
        parse_card(f"---\n{yaml_text}\n---\nbody")


@pytest.mark.parametrize("yaml_text", [
    "a: !!python/object/apply:os.system [echo pwned]",
    "a: !!python/name:os.system",
    "a: !!binary aGVsbG8=",
    "a: *undefined",
    "a: 1\n--- b\nc: 2",  # two documents
])
def test_unsafe_or_unsupported_yaml_is_refused(yaml_text: str) -> None:
    with pytest.raises(InvalidInputError, match="invalid YAML in card metadata at line"):
        parse_card(f"---\n{yaml_text}\n---\n")


def test_front_matter_over_the_size_limit_is_refused_before_parsing() -> None:
    over = "---\nx: '" + "a" * MAX_METADATA_BYTES + "'\n---\n"
    with pytest.raises(InvalidInputError, match="bytes; the limit is"):
        parse_card(over)
    # Multi-byte characters count as bytes, as they are stored.
    with pytest.raises(InvalidInputError, match="bytes; the limit is"):
        parse_card("---\nx: '" + "é" * (MAX_METADATA_BYTES // 2 + 1) + "'\n---\n")
    # A large body is not metadata.
    assert parse_card("---\na: 1\n---\n" + "b" * (2 * MAX_METADATA_BYTES)).metadata == {"a": 1}


def test_billion_laughs_is_refused_quickly() -> None:
    lines = ['lol0: &lol0 "lol"']
    lines += [f"lol{i}: &lol{i} [{', '.join([f'*lol{i - 1}'] * 10)}]" for i in range(1, 10)]  # 10**9 nodes
    start = time.perf_counter()
    with pytest.raises(InvalidInputError, match="once aliases are expanded"):
        parse_card("---\n" + "\n".join(lines) + "\n---\n")
    assert time.perf_counter() - start < 0.5


def test_merge_key_bomb_is_refused() -> None:
    # '<<' merges copy key/value pairs: nesting them grows the mapping exponentially as well.
    lines = ["m0: &m0 {a: 1, b: 2, c: 3, d: 4, e: 5, f: 6, g: 7, h: 8, i: 9, j: 10}"]
    lines += [f"m{i}: &m{i} {{<<: [{', '.join([f'*m{i - 1}'] * 10)}]}}" for i in range(1, 8)]
    with pytest.raises(InvalidInputError, match="once aliases are expanded"):
        parse_card("---\n" + "\n".join(lines) + "\n---\n")


def test_aliases_within_the_limit_are_allowed_and_copied() -> None:
    card = parse_card("---\ndefaults: &d {split: train, path: data/*.parquet}\nconfigs:\n"
                      "- {config_name: a, <<: *d}\n- *d\n---\n")
    assert card.metadata["configs"] == [
        {"config_name": "a", "split": "train", "path": "data/*.parquet"},
        {"split": "train", "path": "data/*.parquet"},
    ]
    card.metadata["configs"][1]["split"] = "test"  # aliases come out as independent copies
    assert card.metadata["defaults"]["split"] == "train"


def test_recursive_alias_is_refused() -> None:
    with pytest.raises(InvalidInputError, match="a cycle"):
        parse_card("---\na: &a [1, *a]\n---\n")


def test_deep_nesting_is_refused_without_crashing() -> None:
    # libyaml's composer recurses in C: this depth would kill the process with SIGSEGV.
    depth = 200_000
    with pytest.raises(InvalidInputError, match=f"deeper than {MAX_METADATA_DEPTH} levels"):
        parse_card("---\na: " + "[" * depth + "]" * depth + "\n---\n")
    ok = "---\na: " + "[" * (MAX_METADATA_DEPTH - 1) + "]" * (MAX_METADATA_DEPTH - 1) + "\n---\n"
    assert "a" in parse_card(ok).metadata


def test_node_limit_counts_plain_values_too(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(InvalidInputError, match=f"more than {MAX_METADATA_NODES:,} values"):
        parse_card("---\ntags: [" + "t, " * MAX_METADATA_NODES + "]\n---\n")
    # The count is exact: root mapping + key + sequence + items (a smaller limit keeps this fast).
    monkeypatch.setattr("fmhub.cards._metadata.MAX_METADATA_NODES", 1_000)
    assert len(parse_card("---\ntags:\n" + "- t\n" * 997 + "---\n").metadata["tags"]) == 997
    with pytest.raises(InvalidInputError, match="more than 1,000 values"):
        parse_card("---\ntags:\n" + "- t\n" * 998 + "---\n")


# -- JSON-ready values -----------------------------------------------------------------------------


def test_dates_become_iso_strings_everywhere() -> None:
    card = parse_card(
        "---\n"
        "date: 2024-01-31\n"
        "at: 2001-12-14 21:59:43.10 -5\n"
        "naive: 2001-12-14T21:59:43\n"
        "quoted: '2024-01-31'\n"
        "history: [{released: 2023-05-01}]\n"
        "2024-02-01: a date as a key\n"
        "---\n"
    )
    assert card.metadata == {
        "date": "2024-01-31",
        "at": "2001-12-14T21:59:43.100000-05:00",
        "naive": "2001-12-14T21:59:43",
        "quoted": "2024-01-31",
        "history": [{"released": "2023-05-01"}],
        "2024-02-01": "a date as a key",
    }
    json.dumps(card.metadata, allow_nan=False)


def test_values_json_cannot_carry_are_converted() -> None:
    card = parse_card(
        "---\n"
        "nan: .nan\ninf: -.inf\nbig: 1.0e+400\n"
        "set: !!set {b, a}\n"
        "omap: !!omap [{x: 1}, {y: 2}]\n"
        "1: one\nnull: nothing\n1.5: one and a half\n"
        "---\n"
    )
    assert card.metadata == {
        "nan": None, "inf": None, "big": None,  # as JSON.stringify writes them
        "set": ["b", "a"],
        "omap": [["x", 1], ["y", 2]],
        "1": "one", "null": "nothing", "1.5": "one and a half",
    }
    assert json.loads(json.dumps(card.metadata, allow_nan=False)) == card.metadata


def test_yaml_1_1_booleans_match_huggingface_hub() -> None:
    # huggingface_hub reads with yaml.safe_load (YAML 1.1): unquoted 'no' is False. We agree, and
    # validation explains it.
    metadata = parse_card("---\nlanguage: [en, no]\n---\n").metadata
    assert metadata == {"language": ["en", False]}
    assert "quote the value" in validate_metadata(metadata, "model").errors[0]


# -- validation ------------------------------------------------------------------------------------


def test_empty_metadata_warns_like_the_hub() -> None:
    assert validate_metadata({}, "model") == ValidationResult(
        errors=[], warnings=["empty or missing yaml metadata in repo card"])
    assert validate_metadata(parse_card("# no metadata").metadata, "dataset").warnings == [
        "empty or missing yaml metadata in repo card"]


def test_a_complete_model_card_is_valid() -> None:
    metadata = {
        "license": "apache-2.0", "language": ["en", "fr"], "tags": ["bert"], "datasets": "ag_news",
        "metrics": ["accuracy"], "library_name": "transformers", "pipeline_tag": "text-classification",
        "base_model": ["a/b", "c/d"], "my-own-key": {"anything": [1, 2]}, "tags_extra": None,
        "model-index": [{"name": "m", "results": [{
            "task": {"type": "text-classification"}, "dataset": {"type": "ag_news", "name": "AG News"},
            "metrics": [{"type": "accuracy", "value": 0.9}]}]}],
    }
    result = validate_metadata(metadata, "model")
    assert result == ValidationResult([], []) and result.ok


@pytest.mark.parametrize("metadata, error", [
    ({"license": ["mit"]}, '"license" must be a string, got a list'),
    ({"license": 2}, '"license" must be a string, got a number'),
    ({"tags": {"a": 1}}, '"tags" must be a string or a list of strings, got a dict'),
    ({"tags": ["a", 1]}, '"tags[1]" must be a string, got a number'),
    ({"language": True}, '"language" must be a string or a list of strings, got a boolean (YAML reads'),
    ({"datasets": 3}, '"datasets" must be a string or a list of strings'),
    ({"metrics": [["accuracy"]]}, '"metrics[0]" must be a string, got a list'),
    ({"base_model": {"id": "x"}}, '"base_model" must be a string or a list of strings'),
    ({"library_name": ["transformers"]}, '"library_name" must be a string, got a list'),
    ({"pipeline_tag": ["text-classification"]}, '"pipeline_tag" must be a string, got a list'),
    ({"model-index": {"name": "m"}}, '"model-index" must be a list, got a dict'),
    ({"model-index": ["m"]}, '"model-index[0]" must be a mapping, got a string'),
    ({"model-index": [{"results": []}]}, '"model-index[0].name" is required'),
    ({"model-index": [{"name": "m"}]}, '"model-index[0].results" is required'),
    ({"model-index": [{"name": "m", "results": {}}]}, '"model-index[0].results" must be a list, got a dict'),
    ({"model-index": [{"name": "m", "results": [{"dataset": {"type": "d", "name": "D"}, "metrics": []}]}]},
     '"model-index[0].results[0].task" is required'),
    ({"model-index": [{"name": "m", "results": [{"task": {"type": "t"}, "dataset": {"type": "d"}, "metrics": []}]}]},
     '"model-index[0].results[0].dataset.name" is required'),
    ({"model-index": [{"name": "m", "results": [{"task": {"type": "t"}, "dataset": {"type": "d", "name": "D"},
                                                 "metrics": [{"type": "accuracy"}]}]}]},
     '"model-index[0].results[0].metrics[0].value" is required'),
])
def test_model_card_field_errors(metadata: dict, error: str) -> None:
    result = validate_metadata(metadata, "model")
    assert not result.ok
    assert any(message.startswith(error) for message in result.errors), result.errors


@pytest.mark.parametrize("metadata, error", [
    ({"license": 1}, '"license" must be a string or a list of strings, got a number'),
    ({"license": ["mit", 1]}, '"license[1]" must be a string'),
    ({"task_categories": {"a": 1}}, '"task_categories" must be a string or a list of strings'),
    ({"size_categories": [1]}, '"size_categories[0]" must be a string'),
    ({"dataset_info": "features"}, '"dataset_info" must be a mapping or a list of mappings, got a string'),
    ({"dataset_info": [{"config_name": "a"}, "b"]}, '"dataset_info[1]" must be a mapping'),
    ({"configs": {"config_name": "a"}}, '"configs" must be a list, got a dict'),
    ({"configs": ["a"]}, '"configs[0]" must be a mapping, got a string'),
    ({"configs": [{"data_files": "x.csv"}]}, '"configs[0].config_name" is required'),
    ({"configs": [{"config_name": 1}]}, '"configs[0].config_name" must be a string, got a number'),
    ({"configs": [{"config_name": "a"}, {"config_name": "a"}]}, '"configs[1].config_name" \'a\' is used by another'),
])
def test_dataset_card_field_errors(metadata: dict, error: str) -> None:
    result = validate_metadata(metadata, "dataset")
    assert any(message.startswith(error) for message in result.errors), result.errors


def test_dataset_fields_are_checked_for_datasets_only() -> None:
    metadata = {"dataset_info": "x", "configs": "y", "task_categories": 1}
    assert validate_metadata(metadata, "model").ok
    assert len(validate_metadata(metadata, "dataset").errors) == 3


def test_a_complete_dataset_card_is_valid() -> None:
    metadata = {
        "license": ["cc-by-4.0", "mit"], "task_categories": ["text-classification"], "language": "en",
        "size_categories": ["1K<n<10K"], "pretty_name": "BBC News",
        "dataset_info": {"features": [{"name": "text", "dtype": "string"}], "splits": [{"name": "train"}]},
        "configs": [{"config_name": "default", "data_files": [{"split": "train", "path": "train.jsonl"}]}],
    }
    assert validate_metadata(metadata, "dataset") == ValidationResult([], [])


def test_license_warnings() -> None:
    assert validate_metadata({"license": "MIT"}, "model").warnings == [
        "\"license\" 'MIT' is not a known license id (did you mean 'mit'?)"]
    assert validate_metadata({"license": "my-license"}, "model").warnings == [
        "\"license\" 'my-license' is not a known license id"]
    assert validate_metadata({"license": "other"}, "model").warnings == [
        '"license" is \'other\': add "license_name" and "license_link" to say which license']
    assert validate_metadata({"license": "other", "license_name": "acme-1.0"}, "model") == ValidationResult([], [])
    assert validate_metadata({"license": "unknown"}, "model") == ValidationResult([], [])


def test_unknown_repo_type_is_refused() -> None:
    with pytest.raises(InvalidInputError, match="invalid repo type"):
        validate_metadata({"license": "mit"}, "spaceship")
    with pytest.raises(InvalidInputError, match="invalid repo type"):
        card_tags({"license": "mit"}, "spaceship")


# -- tags ------------------------------------------------------------------------------------------


def test_model_card_tags() -> None:
    metadata = {
        "tags": ["bert", "text-classification"], "library_name": "transformers",
        "pipeline_tag": "text-classification", "language": ["en", "fr"], "license": "mit",
        "datasets": ["ag_news", "SetFit/bbc-news"], "base_model": "google-bert/bert-base-uncased",
        "task_categories": ["ignored-for-models"],
    }
    assert card_tags(metadata, "model") == [
        "bert", "text-classification", "transformers", "en", "fr", "license:mit",
        "dataset:ag_news", "dataset:SetFit/bbc-news", "base_model:google-bert/bert-base-uncased",
    ]


def test_dataset_card_tags() -> None:
    metadata = {"tags": "news", "language": "en", "task_categories": ["text-classification"],
                "license": ["cc-by-4.0", "mit"], "datasets": ["not-for-datasets"]}
    assert card_tags(metadata, "dataset") == [
        "news", "language:en", "task_categories:text-classification", "license:cc-by-4.0", "license:mit"]


def test_card_tags_skip_invalid_values_and_duplicates() -> None:
    metadata = {"tags": ["a", 1, None, "", "  ", "a", " b "], "license": {"id": "mit"}, "library_name": 3,
                "language": False}
    assert card_tags(metadata, "model") == ["a", "b"]
    assert card_tags({}, "model") == []


# -- rendering -------------------------------------------------------------------------------------


def test_render_card() -> None:
    text = render_card({"license": "mit", "language": ["en", "fr"], "name": "Café"}, "# Title\n")
    assert text == "---\nlicense: mit\nlanguage:\n- en\n- fr\nname: Café\n---\n# Title\n"


def test_render_card_without_metadata() -> None:
    assert render_card({}, "# Title\n") == "# Title\n"
    # A body that would read as front matter gets an explicit empty block.
    body = "---\nnot: metadata\n---\ntext"
    assert parse_card(render_card({}, body)) == Card({}, body)


def test_render_card_refuses_what_yaml_cannot_write() -> None:
    with pytest.raises(InvalidInputError, match="must be a mapping"):
        render_card(["license", "mit"], "")  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError, match="cannot be written as YAML"):
        render_card({"model": object()}, "")


_SCALARS = (st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False)
            | st.text())
_JSON_LIKE = st.recursive(
    _SCALARS,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(), children, max_size=4),
    max_leaves=12,
)


@FAST
@given(metadata=st.dictionaries(st.text(), _JSON_LIKE, max_size=5), body=st.text())
def test_render_then_parse_round_trips(metadata: dict, body: str) -> None:
    assert parse_card(render_card(metadata, body)) == Card(metadata, body)


@FAST
@given(body=st.text(alphabet="-\n\r \tab:"))
def test_round_trips_bodies_made_of_markers(body: str) -> None:
    for metadata in ({}, {"a": "b"}):
        assert parse_card(render_card(metadata, body)) == Card(metadata, body)


# -- huggingface_hub compatibility -----------------------------------------------------------------


def _model_card_data() -> ModelCardData:
    return ModelCardData(
        language="en", license="mit", library_name="transformers", tags=["text-classification"],
        datasets=["SetFit/bbc-news"], base_model="sentence-transformers/all-MiniLM-L6-v2", model_name="minilm-bbc",
        eval_results=[EvalResult(task_type="text-classification", dataset_type="SetFit/bbc-news",
                                 dataset_name="BBC News", metric_type="accuracy", metric_value=0.97)],
    )


def test_parses_a_card_written_by_huggingface_hub() -> None:
    hf_card = ModelCard(f"---\n{_model_card_data().to_yaml()}\n---\n# MiniLM BBC\n")
    card = parse_card(str(hf_card))
    assert card.metadata == hf_card.data.to_dict()
    assert card.body == hf_card.text == "# MiniLM BBC\n"
    assert validate_metadata(card.metadata, "model") == ValidationResult([], [])
    assert card_tags(card.metadata, "model") == [
        "text-classification", "transformers", "en", "license:mit", "dataset:SetFit/bbc-news",
        "base_model:sentence-transformers/all-MiniLM-L6-v2",
    ]


def test_huggingface_hub_reads_a_card_we_write() -> None:
    metadata = _model_card_data().to_dict()
    hf_card = ModelCard(render_card(metadata, "# MiniLM BBC\n"))
    assert hf_card.data.to_dict() == metadata
    assert hf_card.data.eval_results[0].metric_value == 0.97
    assert hf_card.text == "# MiniLM BBC\n"
