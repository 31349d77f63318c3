"""Fixtures shared by the whole suite: stores over every metadata and blob backend, and tiny ML inputs.

Backends are real: SQLite files, a PostgreSQL schema per test (``FMHUB_TEST_PG_URL``, default
``postgresql+psycopg://postgres@127.0.0.1:5432/test``; tests skip with the reason when it is absent),
local folders, and an S3-compatible server started on loopback. The S3 server is ``moto``'s — a
stand-in for real S3 (AWS, MinIO, Ceph) that speaks the same HTTP API through the same boto3 client.
"""

from __future__ import annotations

import os
import random
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from fmhub.constants import Settings, settings
from fmhub.store import Database, Store, open_blob_store

PG_URL = os.environ.get("FMHUB_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
S3_STAND_IN = "moto"  # the S3-compatible server the tests start (a stand-in for real S3)


@pytest.fixture
def serve_app():
    """``with serve_app(app) as url``: any ASGI app under a real uvicorn server on a loopback port."""
    from fmhub.serve._live import running

    return lambda app: running(app, ready_path=None)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(autouse=True)
def _isolated_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No test reads or writes the developer's real $FMHUB_HOME."""
    for name in ("FMHUB_DB_URL", "FMHUB_BLOB_URL", "FMHUB_ENDPOINT", "FMHUB_TOKEN", "FMHUB_S3_ENDPOINT_URL",
                 "FMHUB_ENCRYPTION_KEY_FILE", "FMHUB_S3_SSE", "FMHUB_S3_SSE_KMS_KEY_ID"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("FMHUB_HOME", str(tmp_path / "fmhub-home"))
    monkeypatch.setenv("FMHUB_USER", "tester")
    settings.cache_clear()  # settings are read once per process; each test gets its own
    yield
    settings.cache_clear()


# -- PostgreSQL ------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def pg_admin_engine():
    """An engine on the test PostgreSQL database, or a skip naming why it is unavailable."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.exc import OperationalError

    engine = create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except OperationalError as exc:
        engine.dispose()
        pytest.skip(f"PostgreSQL is not reachable at {PG_URL} (set FMHUB_TEST_PG_URL): {exc.orig}")
    yield engine
    engine.dispose()


@pytest.fixture
def pg_url(pg_admin_engine) -> Iterator[str]:
    """A URL whose connections work in a fresh, private PostgreSQL schema (dropped afterwards)."""
    from sqlalchemy import text
    from sqlalchemy.engine import make_url

    schema = "fmhub_test_" + uuid.uuid4().hex[:12]
    with pg_admin_engine.connect() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    url = make_url(PG_URL).update_query_dict({"options": f"-csearch_path={schema}"})
    yield url.render_as_string(hide_password=False)
    with pg_admin_engine.connect() as conn:
        conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))


# -- S3-compatible server --------------------------------------------------------------------------


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """An S3-compatible server (moto, the stand-in for real S3) on an ephemeral loopback port."""
    from moto.server import ThreadedMotoServer

    os.environ.setdefault("AWS_ACCESS_KEY_ID", "fmhub-test")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "fmhub-test")
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


@pytest.fixture
def s3_blob_url(s3_endpoint: str) -> str:
    """A fresh bucket on the stand-in server, as an ``s3://bucket/prefix`` URI."""
    import boto3

    bucket = "fmhub-test-" + uuid.uuid4().hex[:12]
    boto3.client("s3", endpoint_url=s3_endpoint).create_bucket(Bucket=bucket)
    return f"s3://{bucket}/blobs"


# -- stores ----------------------------------------------------------------------------------------


@pytest.fixture(params=["file", "s3"])
def blob_store(request: pytest.FixtureRequest, tmp_path: Path):
    """A blob store on each backend: a local folder and the S3 stand-in."""
    if request.param == "file":
        store = open_blob_store((tmp_path / "blobs").as_uri())
    else:
        store = open_blob_store(request.getfixturevalue("s3_blob_url"),
                                s3_endpoint_url=request.getfixturevalue("s3_endpoint"))
    yield store
    store.close()


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'fmhub.db'}"


@pytest.fixture(params=["sqlite+file", "postgresql+file", "sqlite+s3", "postgresql+s3"])
def backend_urls(request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    """Settings naming one metadata backend and one blob backend (every combination is tested)."""
    db, blob = request.param.split("+")
    db_url = request.getfixturevalue("sqlite_url" if db == "sqlite" else "pg_url")
    s3_endpoint = None
    if blob == "file":
        blob_url = (tmp_path / "blobs").as_uri()
    else:
        blob_url = request.getfixturevalue("s3_blob_url")
        s3_endpoint = request.getfixturevalue("s3_endpoint")
    return Settings(home=tmp_path / "fmhub-home", db_url=db_url, blob_url=blob_url, s3_endpoint_url=s3_endpoint)


@pytest.fixture
def store(backend_urls: Settings) -> Iterator[Store]:
    """A migrated, empty store on each backend combination."""
    from fmhub.store import open_store

    db = Database(backend_urls.db_url)
    db.upgrade()
    db.dispose()
    with open_store(config=backend_urls) as opened:
        yield opened


@pytest.fixture(params=["sqlite", "postgresql"])
def metadata_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    """A migrated, empty store on each metadata backend (blobs in a folder): for what lives in the database."""
    from fmhub.store import open_store

    db_url = request.getfixturevalue("sqlite_url" if request.param == "sqlite" else "pg_url")
    db = Database(db_url)
    db.upgrade()
    db.dispose()
    with open_store(db_url, (tmp_path / "blobs").as_uri()) as opened:
        yield opened


@pytest.fixture
def local_store(sqlite_url: str, tmp_path: Path) -> Iterator[Store]:
    """The embedded default (SQLite + folder): for tests about one backend's behaviour."""
    from fmhub.store import open_store

    with open_store(sqlite_url, (tmp_path / "blobs").as_uri()) as opened:
        yield opened


# -- a tiny BERT (hidden size 32) and tiny labeled datasets in the embedded store, made offline --------

WORDS = {"sport": "goal match team player score league coach win".split(),
         "tech": "chip phone software network data cloud robot app".split()}


@pytest.fixture
def tiny_model(tmp_path: Path) -> str:
    """``acme/tiny-bert``: a random-init 2-layer BERT with a WordPiece vocab of the dataset's words."""
    import torch
    from transformers import BertConfig, BertModel, BertTokenizer

    from fmhub.client import Hub

    words = {w for ws in WORDS.values() for w in ws} | set("ada lovelace alan turing grace paris new york london score"
                                                           .split())
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + sorted(words) + ["##s", "##ing"]
    (tmp_path / "vocab.txt").write_text("\n".join(vocab) + "\n")
    folder = tmp_path / "tiny-bert"
    BertTokenizer(vocab=str(tmp_path / "vocab.txt")).save_pretrained(folder)
    torch.manual_seed(0)
    BertModel(BertConfig(vocab_size=len(vocab), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                         intermediate_size=37, max_position_embeddings=64)).save_pretrained(folder)
    with Hub.open() as hub:
        hub.create_repo("acme/tiny-bert")
        hub.upload(folder, "acme/tiny-bert")
    return "acme/tiny-bert"


@pytest.fixture
def tiny_data(tmp_path: Path) -> str:
    """``acme/topics``: 120 short texts in two separable classes, imported with splits 70/15/15."""
    from fmhub.client import Hub
    from fmhub.data._import import ImportOptions, import_dataset

    rng = random.Random(0)
    rows = ["text,label"]
    for i in range(120):
        label = "sport" if i % 2 else "tech"
        rows.append(" ".join(rng.choice(WORDS[label]) for _ in range(rng.randint(3, 12))) + f",{label}")
    (tmp_path / "topics.csv").write_text("\n".join(rows) + "\n")
    with Hub.open() as hub:
        import_dataset(hub, tmp_path / "topics.csv", "acme/topics", ImportOptions(split="train=0.7,validation=0.15,test=0.15"))
    return "acme/topics"


@pytest.fixture
def tiny_ner(tmp_path: Path) -> str:
    """``acme/ner``: CoNLL sentences where names and places come from fixed word lists (B-/I- tags)."""
    from fmhub.client import Hub
    from fmhub.data._import import ImportOptions, import_dataset

    rng = random.Random(1)
    people, places = ["ada lovelace", "alan turing", "grace"], ["paris", "new york", "london"]
    lines = []
    for _ in range(90):
        person, place = rng.choice(people).split(), rng.choice(places).split()
        words = [(w, "O") for w in rng.choice(["goal match", "team win", "data cloud"]).split()]
        words += [(w, ("B-PER" if i == 0 else "I-PER")) for i, w in enumerate(person)]
        words += [(w, "O") for w in ["score"]] + [(w, ("B-LOC" if i == 0 else "I-LOC")) for i, w in enumerate(place)]
        lines += [f"{w} {t}" for w, t in words] + [""]
    (tmp_path / "ner.conll").write_text("\n".join(lines))
    with Hub.open() as hub:
        import_dataset(hub, tmp_path / "ner.conll", "acme/ner", ImportOptions(split="train=0.8,validation=0.2"))
    return "acme/ner"


@pytest.fixture
def topic_words() -> dict[str, list[str]]:
    """The words of each topic, from which the tiny datasets are made (and the tiny model's vocab)."""
    return WORDS


@pytest.fixture
def classifier(tiny_model: str, tiny_data: str) -> str:
    """``acme/clf``: the tiny BERT fine-tuned on the two-topic dataset (a classifier to optimize and serve)."""
    from fmhub.train import TrainConfig, train

    assert train(TrainConfig.from_flat(dict(task="text-classification", model=tiny_model, data=tiny_data, output="acme/clf",
                             epochs=2, batch_size=8, learning_rate=3e-3, max_length=32, threads=1,
                             eval_split=None))) is not None
    return "acme/clf"


# -- tiny image data and models: scikit-learn's digits (shipped with it), a few per class ---------------------

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def make_digits():
    """examples/digits/make_digits.py as a module (the example's own script writes the test images)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("make_digits", EXAMPLES / "digits" / "make_digits.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module



@pytest.fixture
def digits_folder(tmp_path: Path) -> Path:
    """12 images of each digit as ``<digit>/<index>.png`` (8×8 grayscale), written by examples/digits."""
    folder = tmp_path / "digits"
    assert make_digits().write_digits(folder, per_class=12) == 120
    return folder


@pytest.fixture
def tiny_images(digits_folder: Path) -> str:
    """``acme/digits``: the 120 digit images imported with splits 70/15/15."""
    from fmhub.client import Hub
    from fmhub.data._import import ImportOptions, import_dataset

    with Hub.open() as hub:
        import_dataset(hub, digits_folder, "acme/digits", ImportOptions(split="train=0.7,validation=0.15,test=0.15"))
    return "acme/digits"


@pytest.fixture
def image_classifier(tiny_images: str) -> str:
    """``acme/digits-resnet``: a ResNet of two 8-channel stages at 16×16, pretrained from its config on the digits."""
    from fmhub.train import TrainConfig, train

    assert train(TrainConfig.from_flat(dict(task="image-classification", architecture="resnet", hidden_size=8,
                                            layers=2, image_size=16, data=tiny_images, output="acme/digits-resnet",
                                            epochs=3, batch_size=16, learning_rate=0.01, threads=1,
                                            eval_split=None))) is not None
    return "acme/digits-resnet"


# -- explanations: a model trained to key on one planted word -----------------------------------------------

KEYWORD = "robot"  # in the tiny vocab; the keyword task's positive class is "the text contains it"


@pytest.fixture
def keyword_data(tmp_path: Path, topic_words) -> str:
    """``acme/keyword``: texts of mixed sport/tech words; label ``yes`` exactly when ``robot`` is among them."""
    from fmhub.client import Hub
    from fmhub.data._import import ImportOptions, import_dataset

    rng = random.Random(3)
    pool = [w for ws in topic_words.values() for w in ws if w != KEYWORD]
    rows = ["text,label"]
    for i in range(240):
        words = [rng.choice(pool) for _ in range(rng.randint(4, 10))]
        label = "yes" if i % 2 else "no"
        if label == "yes":
            words.insert(rng.randrange(len(words) + 1), KEYWORD)
        rows.append(" ".join(words) + f",{label}")
    (tmp_path / "keyword.csv").write_text("\n".join(rows) + "\n")
    with Hub.open() as hub:
        import_dataset(hub, tmp_path / "keyword.csv", "acme/keyword",
                       ImportOptions(split="train=0.8,validation=0.1,test=0.1"))
    return "acme/keyword"


@pytest.fixture
def keyword_model(tiny_model: str, keyword_data: str) -> str:
    """``acme/keyword-clf``: the tiny BERT fine-tuned on ``acme/keyword`` (it keys on the planted word)."""
    from fmhub.train import TrainConfig, train

    config = TrainConfig.from_flat(dict(task="text-classification", model=tiny_model, data=keyword_data,
                                        output="acme/keyword-clf", epochs=4, batch_size=16, learning_rate=3e-3,
                                        max_length=32, threads=1, eval_split=None, seed=0))
    assert train(config) is not None
    return "acme/keyword-clf"
