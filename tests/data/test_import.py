"""fmhub data import end to end on the embedded store: one commit, card, quality, PII, datasets round trip."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fmhub.cards import parse_card
from fmhub.cli import main
from fmhub.client import Hub
from fmhub.data._import import ImportOptions, import_dataset
from fmhub.errors import InvalidInputError


@pytest.fixture
def csv_source(tmp_path: Path) -> Path:
    rows = ["text,label"] + [f"review number {i} is {'good' if i % 3 else 'bad'},{'pos' if i % 3 else 'neg'}"
                             for i in range(60)]
    rows.append('"mail me at jane.doe@example.org or +44 20 7946 0958",pos')
    path = tmp_path / "reviews.csv"
    path.write_text("\n".join(rows) + "\n")
    return path


def test_import_csv_commits_shards_card_and_quality(csv_source: Path, tmp_path: Path) -> None:
    with Hub.open() as hub:
        result = import_dataset(hub, csv_source, "acme/reviews", ImportOptions(redact_pii=True, license="mit",
                                                                               source_name="shop reviews 2026"))
        files = {e.path for e in hub.list_files("acme/reviews", repo_type="dataset")}
        card = parse_card(hub.read_bytes("acme/reviews", "README.md", repo_type="dataset").decode())
        quality = json.loads(hub.read_bytes("acme/reviews", "quality.json", repo_type="dataset"))
        history = hub.list_commits("acme/reviews", repo_type="dataset")
    assert list(result.splits) == ["train", "validation", "test"] and sum(result.splits.values()) == 61
    assert [s.name for s in result.quality.splits] == ["train", "validation", "test"]
    assert 45 <= result.splits["train"] <= 51
    assert {"README.md", "quality.json"} <= files
    assert any(f.startswith("data/train-00000-of-00001") for f in files)
    assert result.label_names == ["neg", "pos"]
    assert result.pii_counts["EMAIL"] == 1 and result.pii_counts["PHONE"] == 1
    meta = card.metadata
    assert meta["license"] == "mit" and meta["task_categories"] == ["text-classification"]
    assert meta["source"] == "shop reviews 2026" and "shop reviews 2026 (`reviews.csv`)" in card.body
    assert sum(s["num_examples"] for s in meta["dataset_info"]["splits"]) == 61
    assert meta["fmhub"]["split_recipe"]["seed"] == 0 and meta["content_hash"].startswith("sha256:")
    assert quality and len(history) == 2  # the repo's initial commit + exactly one import commit

    import datasets

    snapshot = Hub.open().download("acme/reviews", repo_type="dataset", local_dir=tmp_path / "snap")
    loaded = datasets.load_dataset(str(snapshot), cache_dir=str(tmp_path / "hf"))
    assert loaded["train"].features["label"].names == ["neg", "pos"]
    texts = [t for split in loaded.values() for t in split["text"]]
    assert len(texts) == 61 and not any("jane.doe@example.org" in t for t in texts)
    assert any("[EMAIL]" in t for t in texts)


def test_same_seed_same_bytes(csv_source: Path) -> None:
    with Hub.open() as hub:
        first = import_dataset(hub, csv_source, "acme/a")
        again = import_dataset(hub, csv_source, "acme/a")  # nothing changed: no new commit, no error
        assert again.commit.oid == first.commit.oid
        second = import_dataset(hub, csv_source, "acme/b")
        shard = lambda repo: hub.read_bytes(repo, "data/train-00000-of-00001.parquet", repo_type="dataset")  # noqa
        assert shard("acme/a") == shard("acme/b")
        assert first.content_hash == second.content_hash


def test_nothing_is_committed_when_the_import_fails(tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("text,label\nok,1\nbroken,row,here\n")
    with Hub.open() as hub:
        with pytest.raises(InvalidInputError, match="bad.csv:3"):
            import_dataset(hub, bad, "acme/bad")
        assert not [r for r in hub.list_repos(repo_type="dataset") if r.repo_id == "acme/bad"]


def test_cli_import_folder_and_strict(tmp_path: Path, capsys) -> None:
    for label in ("sport", "tech"):
        (tmp_path / "data" / label).mkdir(parents=True)
        for i in range(10):
            (tmp_path / "data" / label / f"{i}.txt").write_text(f"{label} story {i}")
    (tmp_path / "data" / "tech" / "dup.txt").write_text("sport story 1")  # same text, other label: a conflict
    assert main(["data", "import", str(tmp_path / "data"), "acme/news", "--license", "cc-by-4.0"]) == 0
    assert "committed" in capsys.readouterr().out
    assert main(["data", "import", str(tmp_path / "data"), "acme/news2", "--strict"]) == 1
    assert main(["data", "import", str(tmp_path / "nothing"), "acme/x"]) == 2
    assert main(["data", "import", str(tmp_path / "data"), "no-namespace"]) == 2


def test_missing_labels_and_splits_name_the_file_line(tmp_path: Path) -> None:
    nolabel = tmp_path / "nolabel.csv"  # line 4 is the third data row: a quoted text over two lines comes first
    nolabel.write_text('text,label\n"a text\nover two lines",a\nfine,b\nno label here,\nlast,a\n')
    nosplit = tmp_path / "nosplit.jsonl"
    nosplit.write_text('{"text": "a", "label": "x", "split": "train"}\n\n{"text": "b", "label": "y"}\n')
    with Hub.open() as hub:
        with pytest.raises(InvalidInputError, match=r"nolabel\.csv:5: the row has no label"):
            import_dataset(hub, nolabel, "acme/nolabel")
        with pytest.raises(InvalidInputError, match=r"nosplit\.jsonl:3: the row names no split"):
            import_dataset(hub, nosplit, "acme/nosplit")


def test_load_pins_the_commit(csv_source: Path, tmp_path: Path) -> None:
    from fmhub.data import load

    with Hub.open() as hub:
        first = import_dataset(hub, csv_source, "acme/pinned")
        hub.create_tag("acme/pinned", "v1", repo_type="dataset")
        smaller = tmp_path / "smaller.csv"
        smaller.write_text("\n".join(csv_source.read_text().splitlines()[:21]) + "\n")
        import_dataset(hub, smaller, "acme/pinned")
    assert sum(load("acme/pinned", revision="v1", split=s).num_rows for s in ("train", "validation", "test")) == 61
    assert sum(len(d) for d in load("acme/pinned").values()) == 20
    assert load("acme/pinned", revision=first.commit.oid)["train"].features["label"].names == ["neg", "pos"]


def test_cli_conll_columns_to_token_classification(tmp_path: Path) -> None:
    from fmhub.data import load

    sentences = [[("Ada", "NNP", "B-NP", "B-PER"), ("wrote", "VBD", "B-VP", "O")],
                 [("Paris", "NNP", "B-NP", "B-LOC")], [("Bob", "NNP", "B-NP", "B-PER"), ("ran", "VBD", "B-VP", "O")]]
    text = "-DOCSTART- -X- -X- O\n\n" + "\n\n".join("\n".join(" ".join(f) for f in s) for s in sentences * 4) + "\n"
    (tmp_path / "ner.conll").write_text(text)
    assert main(["data", "import", str(tmp_path / "ner.conll"), "acme/ner", "--conll-token-col", "0",
                 "--conll-tag-col", "3", "--split", "train=0.5,test=0.5"]) == 0
    train = load("acme/ner", split="train")
    assert train.features["tags"].feature.names == ["B-LOC", "B-PER", "O"]
    assert train.num_rows + load("acme/ner", split="test").num_rows == 12
    row = next(r for r in train if r["tokens"][0] == "Ada")
    assert row["tags"] == [1, 2]  # B-PER, O by index into the names
    # Column 2 holds chunk tags, not NER tags: another dataset, told apart by the flag.
    assert main(["data", "import", str(tmp_path / "ner.conll"), "acme/chunks", "--conll-tag-col", "2"]) == 0
    assert load("acme/chunks", split="train").features["tags"].feature.names == ["B-NP", "B-VP"]
    assert main(["data", "import", str(tmp_path / "ner.conll"), "acme/bad", "--conll-tag-col", "7"]) == 2


def test_cli_minhash_is_recorded_in_quality_json(tmp_path: Path, capsys) -> None:
    body = " ".join(f"word{i}" for i in range(60))
    (tmp_path / "t.jsonl").write_text("\n".join(json.dumps(r) for r in [
        {"text": body, "split": "train"}, {"text": body.replace("word7 ", "changed "), "split": "test"},
        {"text": "something else entirely", "split": "test"}]) + "\n")
    assert main(["data", "import", str(tmp_path / "t.jsonl"), "acme/mh", "--minhash"]) == 0
    assert "similar texts: 1 test row(s)" in capsys.readouterr().out
    with Hub.open() as hub:
        quality = json.loads(hub.read_bytes("acme/mh", "quality.json", repo_type="dataset"))
    assert quality["similar_threshold"] == 0.8 and quality["similar"][0]["examples"] == [[0, 0]]
    assert main(["data", "import", str(tmp_path / "t.jsonl"), "acme/mh2", "--minhash-threshold", "2"]) == 2
