"""Multi-label text classification in ``fmhub data import``: sources, storage, card, splits, quality, CLI."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from fmhub.cards import parse_card
from fmhub.cli import main
from fmhub.client import Hub
from fmhub.data._import import ImportOptions, import_dataset
from fmhub.data._quality import QualityAccumulator, QualityReport
from fmhub.data._sources import open_source
from fmhub.errors import InvalidInputError

NAMES = ["business", "politics", "sport"]


def _write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    return path


def _shard(hub: Hub, repo: str, split: str = "train") -> pa.Table:
    path = hub.download(repo, repo_type="dataset") / "data" / f"{split}-00000-of-00001.parquet"
    return pq.read_table(path)


@pytest.fixture
def jsonl_source(tmp_path: Path) -> Path:
    """40 rows with 0, 1 or 2 labels, given in any order (and once repeated)."""
    cycle = [["sport", "politics"], ["sport"], [], ["business", "sport", "sport"]]
    return _write_jsonl(tmp_path / "topics.jsonl",
                        [{"text": f"story number {i}", "labels": cycle[i % 4]} for i in range(40)])


def test_jsonl_label_lists_import_as_sequence_of_class_label(jsonl_source: Path) -> None:
    from fmhub.data import load

    with Hub.open() as hub:
        result = import_dataset(hub, jsonl_source, "acme/topics", ImportOptions(split="train=0.5,test=0.5"))
        table = _shard(hub, "acme/topics")
    assert result.label_names == NAMES
    assert table.schema.field("label").type == pa.list_(pa.int64())
    features = json.loads(table.schema.metadata[b"huggingface"])["info"]["features"]
    assert features["label"] == {"_type": "Sequence", "feature": {"_type": "ClassLabel", "names": NAMES}}
    loaded = load("acme/topics")
    feature = loaded["train"].features["label"]
    assert feature.feature.names == NAMES
    by_text = {row["text"]: row["label"] for split in loaded.values() for row in split}
    assert len(by_text) == 40
    assert by_text["story number 0"] == [1, 2]  # politics, sport: ids ascending, as the names are sorted
    assert by_text["story number 1"] == [2]
    assert by_text["story number 2"] == []
    assert by_text["story number 3"] == [0, 2]  # the repeated "sport" is one label


def test_card_metadata_of_a_multi_label_dataset(jsonl_source: Path) -> None:
    with Hub.open() as hub:
        import_dataset(hub, jsonl_source, "acme/topics")
        card = parse_card(hub.read_bytes("acme/topics", "README.md", repo_type="dataset").decode())
    meta = card.metadata
    assert meta["task_categories"] == ["text-classification"]
    assert meta["task_ids"] == ["multi-label-classification"]
    assert meta["dataset_info"]["features"] == [
        {"name": "text", "dtype": "string"},
        {"name": "label", "sequence": {"class_label": {"names": {"0": "business", "1": "politics", "2": "sport"}}}}]
    assert meta["fmhub"]["multi_label"] is True
    assert meta["fmhub"]["split_recipe"]["stratified_by"] == "rarest_label"
    assert "stratified by each row's rarest label" in card.body


def test_single_label_card_is_unchanged(tmp_path: Path) -> None:
    source = tmp_path / "s.csv"
    source.write_text("text,label\n" + "\n".join(f"row {i},{'ab'[i % 2]}" for i in range(20)) + "\n")
    with Hub.open() as hub:
        import_dataset(hub, source, "acme/single")
        meta = parse_card(hub.read_bytes("acme/single", "README.md", repo_type="dataset").decode()).metadata
        table = _shard(hub, "acme/single")
    assert "task_ids" not in meta and "multi_label" not in meta["fmhub"]
    assert table.schema.field("label").type == pa.int64()


def test_csv_with_label_separator(tmp_path: Path) -> None:
    from fmhub.data import load

    source = tmp_path / "topics.csv"
    source.write_text("text,label\n" + "\n".join(
        f"row {i},{['sport|politics', 'sport', '', ' business | sport '][i % 4]}" for i in range(20)) + "\n")
    with Hub.open() as hub:
        result = import_dataset(hub, source, "acme/csv-topics", ImportOptions(label_separator="|",
                                                                               split="train=0.5,test=0.5"))
        assert _shard(hub, "acme/csv-topics").schema.field("label").type == pa.list_(pa.int64())
    assert result.label_names == NAMES
    loaded = load("acme/csv-topics")
    assert loaded["test"].features["label"].feature.names == NAMES
    by_text = {row["text"]: row["label"] for split in loaded.values() for row in split}
    assert [by_text[f"row {i}"] for i in range(4)] == [[1, 2], [2], [], [0, 2]]


def test_parquet_list_column_and_labels_default(tmp_path: Path) -> None:
    pq.write_table(pa.table({"text": ["a", "b", "c"], "labels": [["x", "y"], None, ["y"]]}), tmp_path / "p.parquet")
    source = open_source(tmp_path / "p.parquet")
    assert source.multi_label and source.options["label_column"] == "labels"
    rows = [r for t in source.batches() for r in t.to_pylist()]
    assert rows == [{"text": "a", "label": ["x", "y"]}, {"text": "b", "label": []}, {"text": "c", "label": ["y"]}]
    pq.write_table(pa.table({"text": ["a"], "labels": ["x"]}), tmp_path / "scalar.parquet")
    assert open_source(tmp_path / "scalar.parquet").columns == ("text",)  # a scalar `labels`: as before


def test_stratification_keeps_every_label_in_every_split(tmp_path: Path) -> None:
    # "common" is on most rows; the rarer labels ride along with it, so only stratifying by the rarest
    # label of each row spreads "rare" (10 rows) over the three splits.
    rows = []
    for i in range(200):
        labels = ["common"]
        if i % 20 == 0:
            labels.append("rare")
        elif i % 5 == 0:
            labels.append("medium")
        if i % 7 == 0:
            labels = []
        rows.append({"text": f"generated text {i}", "labels": labels})
    source = _write_jsonl(tmp_path / "gen.jsonl", rows)
    with Hub.open() as hub:
        result = import_dataset(hub, source, "acme/gen")
        again = import_dataset(hub, source, "acme/gen2")
    assert result.content_hash == again.content_hash  # deterministic
    for split in result.quality.splits:
        assert set(split.labels) == {"common", "medium", "rare"}, split.name
    rare = {s.name: s.labels["rare"] for s in result.quality.splits}
    assert rare == {"train": 6, "validation": 1, "test": 1}  # 8 rare rows (2 of 10 have no labels): 0.8/0.1/0.1


def test_quality_counts_each_label_and_conflicts_compare_sets() -> None:
    acc = QualityAccumulator(splits=["train", "test"])
    acc.add_batch("train", ["good match", "vote today", "markets up", "quiet day"],
                  pa.array([["sport"], ["politics", "sport"], ["business"], []], pa.list_(pa.string())))
    acc.add_batch("test", ["Good match!", "vote today", "other"], [["sport", "politics"], ["sport", "politics"], None])
    report = acc.report()
    train, test = report.split("train"), report.split("test")
    assert train.labels == {"sport": 2, "business": 1, "politics": 1}
    assert train.labeled_rows == 3  # the [] row has no label
    assert train.label_fractions["sport"] == pytest.approx(2 / 3)
    assert test.labels == {"politics": 2, "sport": 2} and test.labeled_rows == 2
    assert report.multi_label
    # "good match" has {sport} in train and {politics, sport} in test: a conflict. "vote today" has the
    # same set, given in another order: none.
    assert report.label_conflicts == 1
    assert report.label_conflict_examples[0].rows == (('["sport"]', "train", 0), ('["politics", "sport"]', "test", 0))
    assert any(kind == "label_conflicts" for kind, _ in report.findings())
    data = json.loads(json.dumps(report.to_dict()))
    assert data["schema_version"] == 1 and data["multi_label"] is True
    assert data["splits"][0]["labeled_rows"] == 3
    assert QualityReport.from_dict(data) == report
    with pytest.raises(InvalidInputError, match="mixed"):
        acc.add_batch("train", ["x"], ["sport"])


def test_import_reports_a_label_set_conflict(tmp_path: Path) -> None:
    rows = [{"text": f"text {i}", "labels": ["a"]} for i in range(10)]
    rows += [{"text": "Same Text", "labels": ["a", "b"]}, {"text": "same text", "labels": ["b", "a"]},
             {"text": "same text!", "labels": ["a"]}]
    with Hub.open() as hub:
        result = import_dataset(hub, _write_jsonl(tmp_path / "c.jsonl", rows), "acme/conflict")
        quality = json.loads(hub.read_bytes("acme/conflict", "quality.json", repo_type="dataset"))
    assert result.quality.label_conflicts == 1
    assert quality["multi_label"] is True and quality["label_conflicts"] == 1
    assert sorted(label for label, _, _ in result.quality.label_conflict_examples[0].rows) == ['["a", "b"]', '["a"]']
    totals = Counter()
    for split in result.quality.splits:
        totals.update(split.labels)
    assert totals == {"a": 13, "b": 2}


def test_old_reports_without_the_new_fields_still_load() -> None:
    acc = QualityAccumulator()
    acc.add("train", "x", "a")
    data = acc.report().to_dict()
    del data["multi_label"]
    for split in data["splits"]:
        del split["labeled_rows"]
    report = QualityReport.from_dict(data)
    assert not report.multi_label and report.split("train").labeled_rows == 1


def test_cli_label_separator(tmp_path: Path, capsys) -> None:
    from fmhub.data import load

    (tmp_path / "t.tsv").write_text("text\ttopics\n" + "\n".join(
        f"line {i}\t{['a;b', 'b', 'c;a'][i % 3]}" for i in range(12)) + "\n")
    assert main(["data", "import", str(tmp_path / "t.tsv"), "acme/cli", "--label-column", "topics",
                 "--label-separator", ";", "--split", "train=0.5,test=0.5"]) == 0
    assert "committed" in capsys.readouterr().out
    assert load("acme/cli", split="train").features["label"].feature.names == ["a", "b", "c"]
    assert main(["data", "import", "--help"]) == 0
    assert "--label-separator" in capsys.readouterr().out
    assert main(["data", "import", str(tmp_path / "t.tsv"), "acme/cli2", "--label-separator", ""]) == 2


@pytest.mark.parametrize("rows, message", [
    ([{"text": "a", "labels": ["x"]}, {"text": "b", "labels": "y"}], r"bad\.jsonl:2: the label is a single value"),
    ([{"text": "a", "label": "x"}, {"text": "b", "label": ["y"]}], r"bad\.jsonl:2: the label is a list"),
    ([{"text": "a", "labels": ["x"]}, {"text": "b", "labels": ["y", 1.5]}], r"bad\.jsonl:2: .*1\.5 is not a string"),
    ([{"text": "a", "labels": ["x", {"k": 1}]}], r"bad\.jsonl:1: .*not a string or an integer"),
    ([{"text": "a", "labels": ["x"]}, {"text": "b", "labels": [None]}], r"bad\.jsonl:2: .*not a string"),
    ([{"text": "a", "labels": ["x"]}, {"text": "b"}, {"text": "c", "labels": ["x", " "]}],
     r"bad\.jsonl:3: empty label name"),
])
def test_bad_jsonl_labels_name_file_and_line(tmp_path: Path, rows: list[dict], message: str) -> None:
    source = _write_jsonl(tmp_path / "bad.jsonl", rows)
    with Hub.open() as hub:
        with pytest.raises(InvalidInputError, match=message):
            import_dataset(hub, source, "acme/bad")
        assert not [r for r in hub.list_repos(repo_type="dataset") if r.repo_id == "acme/bad"]


def test_integer_label_ids_in_lists_are_names(tmp_path: Path) -> None:
    source = _write_jsonl(tmp_path / "ints.jsonl", [{"text": f"t{i}", "labels": [i % 3, 7]} for i in range(6)])
    with Hub.open() as hub:
        assert import_dataset(hub, source, "acme/ints").label_names == ["0", "1", "2", "7"]


def test_bad_delimited_and_parquet_labels(tmp_path: Path) -> None:
    (tmp_path / "bad.csv").write_text('text,label\nfine,a|b\n"two\nlines",a\nbroken,a||b\n')
    with pytest.raises(InvalidInputError, match=r"bad\.csv:5: an empty label name"):
        [t for t in open_source(tmp_path / "bad.csv", label_separator="|").batches()]
    pq.write_table(pa.table({"text": ["a", "b"], "label": [["x"], ["y", None]]}), tmp_path / "bad.parquet")
    with pytest.raises(InvalidInputError, match=r"bad\.parquet:row 1: a null item"):
        [t for t in open_source(tmp_path / "bad.parquet").batches()]
    pq.write_table(pa.table({"text": ["a"], "label": [[1.5]]}), tmp_path / "floats.parquet")
    with pytest.raises(InvalidInputError, match="lists of double"):
        [t for t in open_source(tmp_path / "floats.parquet").batches()]
    (tmp_path / "mixed").mkdir()
    pq.write_table(pa.table({"text": ["a"], "label": [["x"]]}), tmp_path / "mixed" / "train.parquet")
    pq.write_table(pa.table({"text": ["b"], "label": ["x"]}), tmp_path / "mixed" / "test.parquet")
    with pytest.raises(InvalidInputError, match=r"train\.parquet: column 'label' holds label lists"):
        [t for t in open_source(tmp_path / "mixed").batches()]  # test.parquet (scalars) is read first
    (tmp_path / "texts.csv").write_text("text\nhello\n")
    with pytest.raises(InvalidInputError, match="no label column"):
        open_source(tmp_path / "texts.csv", label_separator="|")
    with pytest.raises(InvalidInputError, match="one label per row"):
        open_source(tmp_path / "mixed", kind="folder", label_separator="|")
