"""Blob stores: one contract on every backend, then each backend's own layout and failure modes.

The shared tests run through the ``blob_store`` fixture over a local folder and S3; the S3 server is
moto's (``conftest.S3_STAND_IN``), a stand-in for real S3 reached through the same boto3 client.
"""

from __future__ import annotations

import hashlib
import io
import multiprocessing
import os
import random
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from fmhub.errors import BlobNotFoundError, ConfigError, IntegrityError, InvalidInputError
from fmhub.store.blobs import BlobStore, FileBlobStore, open_blob_store
from fmhub.store.blobs._base import CHUNK_SIZE

MiB = 1024 * 1024


def _random_bytes(size: int, seed: int) -> bytes:
    return random.Random(seed).randbytes(size)


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _read(store: BlobStore, sha256: str, start: int = 0, end: int | None = None) -> bytes:
    return b"".join(store.iter_chunks(sha256, start, end))


def _reopen_options(store: BlobStore) -> dict[str, str]:
    """What a fresh process needs besides the URL to open the same store."""
    endpoint = getattr(store, "endpoint_url", None)
    return {"s3_endpoint_url": endpoint} if endpoint else {}


def _s3_client(store: BlobStore):
    import boto3

    return boto3.client("s3", endpoint_url=store.endpoint_url)  # type: ignore[attr-defined]


def _leave_temporary(store: BlobStore, name: str) -> None:
    """Plant what an interrupted write leaves behind, the way each backend would."""
    if isinstance(store, FileBlobStore):
        (store.root / "tmp" / name).write_bytes(b"half an upload")
    else:
        _s3_client(store).put_object(Bucket=store.bucket, Key=f"{store.prefix}/tmp/{name}", Body=b"half an upload")


class _Counter:
    """A progress callback that adds up what it is told."""

    def __init__(self) -> None:
        self.total = 0

    def __call__(self, n: int) -> None:
        self.total += n


class _TrickleStream:
    """A stream that returns at most ``step`` bytes per read and has no ``readinto`` (like a socket)."""

    def __init__(self, data: bytes, step: int = 64 * 1024, fail_after: int | None = None) -> None:
        self._data = data
        self._pos = 0
        self._step = step
        self._fail_after = fail_after

    def read(self, n: int = -1) -> bytes:
        if self._fail_after is not None and self._pos >= self._fail_after:
            raise OSError("connection reset by peer")
        n = self._step if n is None or n < 0 else min(n, self._step)
        chunk = self._data[self._pos:self._pos + n]
        self._pos += len(chunk)
        return chunk


def _assert_nothing_stored(store: BlobStore) -> None:
    assert list(store.iter_blobs()) == []
    assert store.temporary_files() == []


# -- the contract, on every backend ----------------------------------------------------------------


def test_put_stream_round_trip(blob_store: BlobStore) -> None:
    data = _random_bytes(10_000, seed=1)
    progress = _Counter()
    info = blob_store.put_stream(io.BytesIO(data), progress=progress)
    assert (info.sha256, info.size, info.created) == (_sha256(data), len(data), True)
    assert progress.total == len(data)
    assert blob_store.exists(info.sha256)
    assert blob_store.size(info.sha256) == len(data)
    assert _read(blob_store, info.sha256) == data
    assert blob_store.rehash(info.sha256) == (_sha256(data), len(data))
    assert blob_store.temporary_files() == []


def test_put_file_round_trip(blob_store: BlobStore, tmp_path: Path) -> None:
    data = _random_bytes(20_000, seed=2)
    source = tmp_path / "weights.bin"
    source.write_bytes(data)
    progress = _Counter()
    info = blob_store.put_file(source, progress=progress)
    assert (info.sha256, info.size, info.created) == (_sha256(data), len(data), True)
    assert progress.total == len(data)
    assert _read(blob_store, info.sha256) == data
    assert blob_store.temporary_files() == []


def test_put_file_with_declared_digest(blob_store: BlobStore, tmp_path: Path) -> None:
    data = _random_bytes(5_000, seed=3)
    source = tmp_path / "f.bin"
    source.write_bytes(data)
    info = blob_store.put_file(source, expected_sha256=_sha256(data), expected_size=len(data))
    assert (info.sha256, info.size, info.created) == (_sha256(data), len(data), True)
    assert _read(blob_store, info.sha256) == data


def test_empty_blob(blob_store: BlobStore) -> None:
    info = blob_store.put_stream(io.BytesIO(b""))
    assert (info.sha256, info.size, info.created) == (_sha256(b""), 0, True)
    assert blob_store.size(info.sha256) == 0
    assert _read(blob_store, info.sha256) == b""
    assert [(b.sha256, b.size) for b in blob_store.iter_blobs()] == [(_sha256(b""), 0)]


def test_same_content_is_stored_once(blob_store: BlobStore, tmp_path: Path) -> None:
    data = _random_bytes(30_000, seed=4)
    source = tmp_path / "again.bin"
    source.write_bytes(data)
    first = blob_store.put_stream(io.BytesIO(data))
    again = blob_store.put_stream(io.BytesIO(data))
    progress = _Counter()
    from_file = blob_store.put_file(source, progress=progress)
    assert first.created and not again.created and not from_file.created
    assert first.sha256 == again.sha256 == from_file.sha256 == _sha256(data)
    assert progress.total == len(data)  # a dedup still reports the bytes as done
    assert [(b.sha256, b.size) for b in blob_store.iter_blobs()] == [(_sha256(data), len(data))]
    assert blob_store.temporary_files() == []


@pytest.mark.parametrize("declared", ["sha256", "size", "both"])
def test_declared_mismatch_keeps_nothing_from_a_stream(blob_store: BlobStore, declared: str) -> None:
    data = _random_bytes(8_000, seed=5)
    other = _sha256(b"something else")
    claims = {"sha256": {"expected_sha256": other},
              "size": {"expected_size": len(data) + 1},
              "both": {"expected_sha256": other, "expected_size": len(data)}}[declared]
    with pytest.raises(IntegrityError):
        blob_store.put_stream(io.BytesIO(data), **claims)
    _assert_nothing_stored(blob_store)
    assert not blob_store.exists(_sha256(data))


@pytest.mark.parametrize("declared", ["sha256", "size", "both"])
def test_declared_mismatch_keeps_nothing_from_a_file(blob_store: BlobStore, tmp_path: Path, declared: str) -> None:
    data = _random_bytes(8_000, seed=6)
    source = tmp_path / "liar.bin"
    source.write_bytes(data)
    other = _sha256(b"something else")
    claims = {"sha256": {"expected_sha256": other},
              "size": {"expected_size": len(data) - 1},
              "both": {"expected_sha256": other, "expected_size": len(data)}}[declared]
    with pytest.raises(IntegrityError):
        blob_store.put_file(source, **claims)
    _assert_nothing_stored(blob_store)


def test_failing_stream_keeps_nothing(blob_store: BlobStore) -> None:
    stream = _TrickleStream(_random_bytes(1 * MiB, seed=7), fail_after=300_000)
    with pytest.raises(OSError, match="connection reset"):
        blob_store.put_stream(stream)  # type: ignore[arg-type]
    _assert_nothing_stored(blob_store)


def test_short_reads_are_stored_whole(blob_store: BlobStore) -> None:
    data = _random_bytes(3 * MiB + 17, seed=8)
    info = blob_store.put_stream(_TrickleStream(data))  # type: ignore[arg-type]
    assert (info.sha256, info.size) == (_sha256(data), len(data))
    assert blob_store.rehash(info.sha256) == (_sha256(data), len(data))


_N = 1000


@pytest.mark.parametrize(("start", "end"), [
    (0, None), (0, _N), (10, 20), (0, 1), (_N - 1, None), (_N - 1, _N), (_N - 10, _N + 50),
    (5, 5), (0, 0), (20, 10), (_N, None), (_N, _N + 10), (_N + 5, None),
])
def test_ranges(blob_store: BlobStore, start: int, end: int | None) -> None:
    data = _random_bytes(_N, seed=9)
    sha = blob_store.put_stream(io.BytesIO(data)).sha256
    assert _read(blob_store, sha, start, end) == data[start:end]


@pytest.mark.parametrize(("start", "end"), [(0, None), (0, 0), (0, 5), (1, None)])
def test_ranges_of_an_empty_blob(blob_store: BlobStore, start: int, end: int | None) -> None:
    sha = blob_store.put_stream(io.BytesIO(b"")).sha256
    assert _read(blob_store, sha, start, end) == b""


def test_download_writes_at_the_current_position(blob_store: BlobStore, tmp_path: Path) -> None:
    data = _random_bytes(50_000, seed=10)
    sha = blob_store.put_stream(io.BytesIO(data)).sha256
    dest = tmp_path / "out.bin"
    progress = _Counter()
    with open(dest, "wb") as f:
        f.write(b"header")
        assert blob_store.download(sha, f, progress) == len(data)
        f.write(b"trailer")  # lands after the blob, as after any sequential write
    assert dest.read_bytes() == b"header" + data + b"trailer"
    assert progress.total == len(data)


def test_download_into_memory(blob_store: BlobStore) -> None:
    data = _random_bytes(CHUNK_SIZE + 1000, seed=11)
    sha = blob_store.put_stream(io.BytesIO(data)).sha256
    dest = io.BytesIO()
    progress = _Counter()
    assert blob_store.download(sha, dest, progress) == len(data)
    assert dest.getvalue() == data and progress.total == len(data)


def test_download_empty_blob(blob_store: BlobStore, tmp_path: Path) -> None:
    sha = blob_store.put_stream(io.BytesIO(b"")).sha256
    with open(tmp_path / "empty", "wb") as f:
        assert blob_store.download(sha, f) == 0
    assert (tmp_path / "empty").read_bytes() == b""


def test_delete_is_idempotent(blob_store: BlobStore) -> None:
    keep = blob_store.put_stream(io.BytesIO(b"keep me")).sha256
    doomed = blob_store.put_stream(io.BytesIO(b"delete me")).sha256
    blob_store.delete(doomed)
    assert not blob_store.exists(doomed)
    with pytest.raises(BlobNotFoundError):
        blob_store.size(doomed)
    blob_store.delete(doomed)  # again: not an error
    blob_store.delete(_sha256(b"never stored"))
    assert [b.sha256 for b in blob_store.iter_blobs()] == [keep]
    # Deleted content can be stored again.
    assert blob_store.put_stream(io.BytesIO(b"delete me")).created


def test_missing_blob(blob_store: BlobStore, tmp_path: Path) -> None:
    missing = _sha256(b"not here")
    assert not blob_store.exists(missing)
    with pytest.raises(BlobNotFoundError) as caught:
        blob_store.size(missing)
    assert caught.value.sha256 == missing and isinstance(caught.value, LookupError)
    # Raised when asked, not on first iteration, so a server can answer 404 before streaming starts.
    with pytest.raises(BlobNotFoundError):
        blob_store.iter_chunks(missing)
    with pytest.raises(BlobNotFoundError):
        blob_store.iter_chunks(missing, 3, 3)
    with open(tmp_path / "out", "wb") as f, pytest.raises(BlobNotFoundError):
        blob_store.download(missing, f)


@pytest.mark.parametrize("bad", ["", "abc", "A" * 64, "g" * 64, "0" * 63, "0" * 65, "../" + "0" * 61, None])
def test_invalid_sha256_is_rejected(blob_store: BlobStore, tmp_path: Path, bad: object) -> None:
    for call in (blob_store.exists, blob_store.size, blob_store.iter_chunks, blob_store.delete):
        with pytest.raises(InvalidInputError):
            call(bad)  # type: ignore[arg-type]
    with open(tmp_path / "out", "wb") as f, pytest.raises(InvalidInputError):
        blob_store.download(bad, f)  # type: ignore[arg-type]


def test_iter_blobs_lists_exactly_the_stored_blobs(blob_store: BlobStore) -> None:
    assert list(blob_store.iter_blobs()) == []
    before = time.time()
    contents = [_random_bytes(n, seed=n) for n in (0, 1, 100, 4096, 70_000)]
    for data in contents:
        blob_store.put_stream(io.BytesIO(data))
    blob_store.delete(_sha256(contents[2]))
    _leave_temporary(blob_store, "upload-interrupted.part")
    listed = list(blob_store.iter_blobs())
    expected = {_sha256(d): len(d) for i, d in enumerate(contents) if i != 2}
    assert {b.sha256: b.size for b in listed} == expected
    assert len(listed) == len(expected)
    for blob in listed:  # S3 keeps whole seconds
        assert before - 2 <= blob.mtime <= time.time() + 2


def test_temporary_leftovers_are_hidden_and_cleaned(blob_store: BlobStore) -> None:
    kept = blob_store.put_stream(io.BytesIO(b"a real blob")).sha256
    _leave_temporary(blob_store, "upload-crashed.part")
    assert blob_store.temporary_files() == ["upload-crashed.part"]
    assert [b.sha256 for b in blob_store.iter_blobs()] == [kept]
    assert blob_store.clean_temporary(older_than_seconds=3600)[0] == 0  # too recent: maybe a live upload
    assert blob_store.temporary_files() == ["upload-crashed.part"]
    time.sleep(0.01)
    assert blob_store.clean_temporary(older_than_seconds=0, dry_run=True)[0] == 1  # counted, kept
    assert blob_store.clean_temporary(older_than_seconds=0)[0] == 1
    assert blob_store.temporary_files() == []
    assert [b.sha256 for b in blob_store.iter_blobs()] == [kept]
    assert _read(blob_store, kept) == b"a real blob"


def test_several_chunks(blob_store: BlobStore, tmp_path: Path) -> None:
    data = _random_bytes(9 * MiB, seed=11)  # > 2 × CHUNK_SIZE
    sha = _sha256(data)
    info = blob_store.put_stream(io.BytesIO(data))
    assert (info.sha256, info.size, info.created) == (sha, len(data), True)

    chunks = list(blob_store.iter_chunks(sha))
    assert len(chunks) >= 3 and all(0 < len(c) <= CHUNK_SIZE for c in chunks)
    assert b"".join(chunks) == data
    assert _read(blob_store, sha, CHUNK_SIZE - 10, CHUNK_SIZE + 10) == data[CHUNK_SIZE - 10:CHUNK_SIZE + 10]
    assert _read(blob_store, sha, len(data) - 1) == data[-1:]

    with open(tmp_path / "out", "wb") as f:
        assert blob_store.download(sha, f) == len(data)
    assert _sha256((tmp_path / "out").read_bytes()) == sha

    source = tmp_path / "same.bin"
    source.write_bytes(data)
    assert not blob_store.put_file(source).created
    assert [(b.sha256, b.size) for b in blob_store.iter_blobs()] == [(sha, len(data))]
    assert blob_store.temporary_files() == []


def _write_same_content(url: str, options: dict[str, str], environ: dict[str, str], source: Path, mode: str,
                        start, results) -> None:
    """One of the concurrent writers: a separate process that opens the store from its URL."""
    os.environ.update(environ)  # the parent's environment (credentials), as a spawned process would have
    store = open_blob_store(url, **options)
    try:
        start.wait(timeout=60)  # every writer begins at once
        if mode == "file":
            info = store.put_file(source)
        else:
            with open(source, "rb") as f:
                info = store.put_stream(f)
        results.put((info.sha256, info.size, info.created))
    except BaseException as exc:
        results.put(("failed", repr(exc), None))
        raise
    finally:
        store.close()


def test_concurrent_writers_of_the_same_content(blob_store: BlobStore, tmp_path: Path) -> None:
    data = _random_bytes(2 * MiB + 123, seed=12)
    source = tmp_path / "shared.bin"
    source.write_bytes(data)
    # Fresh processes (nothing inherited from this one) forked from a server that has already imported
    # fmhub and boto3, so eight of them start in milliseconds rather than seconds.
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(["fmhub.store.blobs", "fmhub.store.blobs.s3", __name__])
    start, results = ctx.Barrier(8), ctx.Queue()
    writers = [ctx.Process(target=_write_same_content,
                           args=(blob_store.url, _reopen_options(blob_store), dict(os.environ), source,
                                 "file" if i % 2 else "stream", start, results))
               for i in range(8)]
    for writer in writers:
        writer.start()
    outcomes = [results.get(timeout=60) for _ in writers]
    for writer in writers:
        writer.join(timeout=60)
        assert writer.exitcode == 0
    assert set(outcomes) <= {(_sha256(data), len(data), True), (_sha256(data), len(data), False)}, outcomes
    assert any(created for _, _, created in outcomes)
    assert [(b.sha256, b.size) for b in blob_store.iter_blobs()] == [(_sha256(data), len(data))]
    assert blob_store.rehash(_sha256(data)) == (_sha256(data), len(data))
    assert blob_store.temporary_files() == []


def test_url_reopens_the_same_store(blob_store: BlobStore) -> None:
    sha = blob_store.put_stream(io.BytesIO(b"by url")).sha256
    reopened = open_blob_store(blob_store.url, **_reopen_options(blob_store))
    try:
        assert reopened.url == blob_store.url
        assert _read(reopened, sha) == b"by url"
    finally:
        reopened.close()


# -- file:// ---------------------------------------------------------------------------------------


def test_file_blob_layout_is_read_only(tmp_path: Path) -> None:
    store = FileBlobStore(tmp_path / "blobs")
    info = store.put_stream(io.BytesIO(b"immutable"))
    path = tmp_path / "blobs" / info.sha256[:2] / info.sha256[2:4] / info.sha256
    assert store.local_path(info.sha256) == path
    assert path.read_bytes() == b"immutable"
    assert stat.S_IMODE(path.stat().st_mode) == 0o444


# -- s3:// -----------------------------------------------------------------------------------------


@pytest.fixture
def s3_store(s3_blob_url: str, s3_endpoint: str):
    from fmhub.store.blobs.s3 import S3BlobStore

    store = S3BlobStore.from_url(s3_blob_url, s3_endpoint_url=s3_endpoint)
    yield store
    store.close()


def test_s3_blob_layout(s3_store) -> None:
    info = s3_store.put_stream(io.BytesIO(b"in a bucket"))
    keys = [o["Key"] for o in _s3_client(s3_store).list_objects_v2(Bucket=s3_store.bucket).get("Contents", [])]
    assert keys == [f"blobs/{info.sha256[:2]}/{info.sha256[2:4]}/{info.sha256}"]
    assert s3_store.local_path(info.sha256) is None


def test_s3_multipart_upload_and_copy(s3_blob_url: str, s3_endpoint: str, tmp_path: Path) -> None:
    from fmhub.store.blobs.s3 import S3BlobStore

    bucket, prefix = s3_blob_url.removeprefix("s3://").split("/", 1)
    store = S3BlobStore(bucket, prefix, s3_endpoint, part_size=5 * MiB)  # S3's smallest part: 2 parts below
    try:
        data = _random_bytes(5 * MiB + 5, seed=13)
        # Short reads must still fill whole parts: S3 refuses parts under 5 MiB but the last.
        info = store.put_stream(_TrickleStream(data))  # type: ignore[arg-type]
        assert (info.sha256, info.size, info.created) == (_sha256(data), len(data), True)
        assert store.rehash(info.sha256) == (_sha256(data), len(data))
        with open(tmp_path / "out", "wb") as f:
            assert store.download(info.sha256, f) == len(data)  # parallel ranged GETs
        assert (tmp_path / "out").read_bytes() == data
        assert store.temporary_files() == []

        with pytest.raises(IntegrityError):
            store.put_stream(io.BytesIO(data[:-1] + b"!"), expected_sha256=info.sha256)
        assert [b.sha256 for b in store.iter_blobs()] == [info.sha256]
        assert store.temporary_files() == []
        assert _s3_client(store).list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []
    finally:
        store.close()


def test_s3_unfinished_multipart_upload_is_a_leftover(s3_store) -> None:
    client = _s3_client(s3_store)
    key = f"{s3_store.prefix}/tmp/killed-mid-upload"
    upload = client.create_multipart_upload(Bucket=s3_store.bucket, Key=key)
    client.upload_part(Bucket=s3_store.bucket, Key=key, UploadId=upload["UploadId"], PartNumber=1, Body=b"part")
    assert s3_store.temporary_files() == ["killed-mid-upload (unfinished multipart upload)"]
    assert list(s3_store.iter_blobs()) == []
    assert s3_store.clean_temporary(older_than_seconds=3600)[0] == 0  # a part arrived just now
    time.sleep(0.01)
    assert s3_store.clean_temporary(older_than_seconds=0, dry_run=True)[0] == 1  # counted, kept
    assert s3_store.clean_temporary(older_than_seconds=0)[0] == 1
    assert s3_store.temporary_files() == []
    assert client.list_multipart_uploads(Bucket=s3_store.bucket).get("Uploads", []) == []


@pytest.mark.parametrize(("url", "bucket", "prefix"), [
    ("s3://my-bucket", "my-bucket", ""),
    ("s3://my-bucket/", "my-bucket", ""),
    ("s3://my-bucket/fmhub/blobs/", "my-bucket", "fmhub/blobs"),
])
def test_s3_url_parsing(url: str, bucket: str, prefix: str) -> None:
    store = open_blob_store(url, s3_endpoint_url="http://127.0.0.1:9")
    try:
        assert (store.bucket, store.prefix) == (bucket, prefix)  # type: ignore[attr-defined]
        assert store.url == url.rstrip("/")
    finally:
        store.close()


@pytest.mark.parametrize("url", [
    "s3://", "s3:///prefix", "s3://Bad_Bucket/x", "s3://ab/x", "s3://user@bucket/x", "s3://bucket:9000/x",
    "s3://bucket/x?versioning=1", "s3://bucket/a/../b", "s3://bucket/a//b", "s3://bucket/a b",
])
def test_s3_malformed_url_is_a_config_error(url: str) -> None:
    with pytest.raises(ConfigError):
        open_blob_store(url)


def test_s3_malformed_endpoint_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="FMHUB_S3_ENDPOINT_URL"):
        open_blob_store("s3://my-bucket/blobs", s3_endpoint_url="127.0.0.1:9000")


def test_s3_missing_bucket_says_to_create_it(s3_endpoint: str) -> None:
    store = open_blob_store("s3://fmhub-no-such-bucket/blobs", s3_endpoint_url=s3_endpoint)
    try:
        for call in (lambda: store.exists(_sha256(b"x")), lambda: store.put_stream(io.BytesIO(b"x")),
                     lambda: list(store.iter_blobs())):
            with pytest.raises(ConfigError, match="create the bucket"):
                call()
    finally:
        store.close()


def test_s3_unreachable_endpoint_names_the_setting(s3_endpoint: str) -> None:
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{sock.getsockname()[1]}"
    store = open_blob_store("s3://my-bucket/blobs", s3_endpoint_url=closed)
    try:
        with pytest.raises(ConfigError, match="FMHUB_S3_ENDPOINT_URL"):
            store.exists(_sha256(b"x"))
    finally:
        store.close()


def test_boto3_stays_inside_the_s3_module() -> None:
    code = "import sys, fmhub.store.blobs; print('boto3' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={**os.environ}).stdout
    assert out.strip() == "False"
