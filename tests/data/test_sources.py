"""Every source kind streams uniform rows; bad input names the file, the line and the fix."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from fmhub.data._sources import detect_encoding, open_source
from fmhub.errors import InvalidInputError


def _rows(source) -> list[dict]:
    return [row for table in source.batches() for row in table.to_pylist()]


def test_csv_tsv_with_columns_and_split_column(tmp_path: Path) -> None:
    (tmp_path / "a.csv").write_text('body,topic,split\n"Hello, world",greet,train\nBye,leave,test\n')
    source = open_source(tmp_path / "a.csv", text_column="body", label_column="topic")
    assert (source.kind, source.task, source.has_splits) == ("csv", "text-classification", True)
    assert _rows(source) == [{"text": "Hello, world", "label": "greet", "split": "train"},
                             {"text": "Bye", "label": "leave", "split": "test"}]
    (tmp_path / "b.tsv").write_text("text\tlabel\nx y\t1\n")
    assert _rows(open_source(tmp_path / "b.tsv")) == [{"text": "x y", "label": "1"}]


def test_jsonl_parquet_and_token_classification(tmp_path: Path) -> None:
    (tmp_path / "t.jsonl").write_text("\n".join(json.dumps(r) for r in [
        {"tokens": ["Ada", "wrote"], "tags": ["B-PER", "O"]}, {"tokens": ["Hi"], "tags": ["O"]}]) + "\n")
    source = open_source(tmp_path / "t.jsonl")
    assert source.task == "token-classification"
    assert _rows(source)[0] == {"tokens": ["Ada", "wrote"], "tags": ["B-PER", "O"]}
    pq.write_table(pa.table({"text": ["a", "b"], "label": ["x", None]}), tmp_path / "d.parquet")
    assert _rows(open_source(tmp_path / "d.parquet")) == [{"text": "a", "label": "x"}, {"text": "b", "label": None}]


def test_folder_of_class_subfolders_like_bbc_news(tmp_path: Path) -> None:
    for label, docs in {"sport": ["goal", "match"], "tech": ["chip"]}.items():
        (tmp_path / "data" / label).mkdir(parents=True)
        for i, doc in enumerate(docs):
            (tmp_path / "data" / label / f"{i:03d}.txt").write_text(doc)
    source = open_source(tmp_path / "data")
    assert (source.kind, source.label_names) == ("folder", ("sport", "tech"))
    assert sorted((r["label"], r["text"]) for r in _rows(source)) == [("sport", "goal"), ("sport", "match"),
                                                                        ("tech", "chip")]


def test_conll_files_named_by_split(tmp_path: Path) -> None:
    (tmp_path / "train.conll").write_text("-DOCSTART- O\n\nAda NNP B-PER\nwrote VBD O\n\nParis NNP B-LOC\n")
    (tmp_path / "test.conll").write_text("# comment\nBob NNP B-PER\n")
    source = open_source(tmp_path)
    assert (source.kind, source.has_splits) == ("conll", True)
    assert _rows(source) == [{"tokens": ["Bob"], "tags": ["B-PER"], "split": "test"},
                             {"tokens": ["Ada", "wrote"], "tags": ["B-PER", "O"], "split": "train"},
                             {"tokens": ["Paris"], "tags": ["B-LOC"], "split": "train"}]


def test_encodings_detected_and_overridden(tmp_path: Path) -> None:
    (tmp_path / "l.csv").write_bytes("text,label\ncafé crème à la carte,ok\n".encode("latin-1"))
    assert _rows(open_source(tmp_path / "l.csv", encoding="latin-1"))[0]["text"] == "café crème à la carte"
    assert detect_encoding(tmp_path / "l.csv") != "utf-8"
    with pytest.raises(InvalidInputError, match="unknown encoding") as error:
        open_source(tmp_path / "l.csv", encoding="klingon")
    assert "--encoding" in error.value.hint
    with pytest.raises(InvalidInputError, match="not valid utf-8") as error:
        _rows(open_source(tmp_path / "l.csv", encoding="utf-8"))
    assert "--encoding" in error.value.hint


def test_bad_input_is_named(tmp_path: Path) -> None:
    (tmp_path / "bad.csv").write_text("text,label\nok,1\ntoo,many,fields\n")
    with pytest.raises(InvalidInputError, match=r"bad.csv:3: 3 fields"):
        _rows(open_source(tmp_path / "bad.csv"))
    with pytest.raises(InvalidInputError, match="the columns are: text, label") as error:
        open_source(tmp_path / "bad.csv", text_column="body")
    assert "--text-column" in error.value.hint
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(InvalidInputError, match="empty"):
        open_source(tmp_path / "empty.csv")
    (tmp_path / "j.jsonl").write_text('{"text": "a"}\n{oops\n')
    with pytest.raises(InvalidInputError, match=r"j.jsonl:2: not a JSON object"):
        _rows(open_source(tmp_path / "j.jsonl"))
    with pytest.raises(InvalidInputError, match="no such file"):
        open_source(tmp_path / "missing.csv")


def test_csv_quoting_bom_crlf_and_split_named_files(tmp_path: Path, monkeypatch) -> None:
    import fmhub.data._sources as sources

    monkeypatch.setattr(sources, "_ARROW_BATCH_ROWS", 2)  # several batches from small files
    (tmp_path / "train.csv").write_bytes(b'\xef\xbb\xbftext,label\r\n"two\r\nlines",a\r\n"say ""hi""",\r\nx,b\r\n')
    (tmp_path / "test.csv").write_text("text,label\ny,a\n")
    source = open_source(tmp_path)
    assert (source.kind, source.has_splits, source.columns) == ("csv", True, ("text", "label", "split"))
    assert _rows(source) == [{"text": "y", "label": "a", "split": "test"},
                             {"text": "two\r\nlines", "label": "a", "split": "train"},
                             {"text": 'say "hi"', "label": None, "split": "train"},
                             {"text": "x", "label": "b", "split": "train"}]
    labels_only = [row for table in source.batches(("label",)) for row in table.to_pylist()]
    assert labels_only == [{"label": "a"}, {"label": "a"}, {"label": None}, {"label": "b"}]


def test_malformed_quoting_names_the_line(tmp_path: Path) -> None:
    (tmp_path / "q.csv").write_text('text,label\nok,1\n"fine",2\n"open quote,3\n')
    with pytest.raises(InvalidInputError, match=r"q.csv:\d+: malformed row|q.csv: cannot be read as CSV"):
        _rows(open_source(tmp_path / "q.csv"))


def test_parquet_labels_are_cast_and_token_lists_checked(tmp_path: Path) -> None:
    pq.write_table(pa.table({"text": ["a", "b"], "label": [1, None], "split": ["dev", "train"]}), tmp_path / "n.parquet")
    assert _rows(open_source(tmp_path / "n.parquet")) == [{"text": "a", "label": "1", "split": "validation"},
                                                          {"text": "b", "label": None, "split": "train"}]
    pq.write_table(pa.table({"tokens": [["a", "b"], ["c"]], "tags": [["O", "O"], ["O", "B-X"]]}),
                   tmp_path / "t.parquet")
    with pytest.raises(InvalidInputError, match=r"t.parquet:row 1: tokens and tags must be lists of the same length"):
        _rows(open_source(tmp_path / "t.parquet"))
    pq.write_table(pa.table({"text": [{"nested": 1}]}), tmp_path / "s.parquet")
    with pytest.raises(InvalidInputError, match="cannot be read as text"):
        _rows(open_source(tmp_path / "s.parquet"))
