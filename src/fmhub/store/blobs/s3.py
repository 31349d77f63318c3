"""``s3://`` blob store: ``<prefix>/ab/cd/<sha256>`` in a bucket on AWS S3 or an S3-compatible server.

A write streams the bytes through sha256 into a unique temporary key ``<prefix>/tmp/<uuid4>``
(multipart above :data:`DEFAULT_PART_SIZE`), checks them against what the caller declared, and only
then copies them server-side to their final key and deletes the temporary one. So a blob is visible
only once complete and verified, an interrupted write leaves at most a temporary leftover (which
:meth:`S3BlobStore.clean_temporary` removes), and writers of the same bytes both succeed with one copy.

boto3 is imported here only; its errors are translated to :mod:`fmhub.errors` at this boundary.

Example::

    store = S3BlobStore.from_url("s3://my-bucket/fmhub/blobs", s3_endpoint_url="http://127.0.0.1:9000")
    info = store.put_file(Path("model.safetensors"))
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import re
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any, BinaryIO
from urllib.parse import urlsplit

import boto3
import boto3.exceptions
import boto3.session
import botocore.exceptions as boto_errors
import s3transfer.exceptions
from boto3.s3.transfer import TransferConfig
from botocore.config import Config

from fmhub.constants import ENV_BLOB_URL, ENV_S3_ENDPOINT
from fmhub.errors import BlobNotFoundError, ConfigError, FmhubError, InvalidInputError, StorageUnavailableError
from fmhub.store.blobs._base import (
    CHUNK_SIZE,
    BlobInfo,
    BlobStore,
    Progress,
    StoredBlob,
    check_sha256,
    verify_expected,
)

__all__ = ["S3BlobStore", "DEFAULT_PART_SIZE"]

#: Multipart threshold and part size for uploads, copies and downloads. S3 allows 10,000 parts, so
#: this caps a streamed blob at 640 GiB; memory per upload is a few parts (see ``_IN_MEMORY_PARTS``).
DEFAULT_PART_SIZE = 64 * 1024 * 1024
_MIN_PART_SIZE = 5 * 1024 * 1024  # S3's minimum for every part but the last
_IN_MEMORY_PARTS = 2  # parts of a streamed upload buffered at once (each is read before it is sent)
_CONCURRENCY = 8

_HEX2 = re.compile(r"[0-9a-f]{2}")
_SHA256 = re.compile(r"[0-9a-f]{64}")
_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
_PREFIX_SEGMENT = re.compile(r"[A-Za-z0-9._=+-]+")

_MISSING = frozenset({"404", "NoSuchKey", "NotFound"})
_DENIED = frozenset({"403", "AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "ExpiredToken",
                     "InvalidToken", "TokenRefreshRequired", "AllAccessDisabled", "AuthorizationHeaderMalformed"})
_UNSATISFIABLE_RANGE = frozenset({"416", "InvalidRange"})
_CREDENTIAL_ERRORS = (boto_errors.NoCredentialsError, boto_errors.PartialCredentialsError,
                      boto_errors.CredentialRetrievalError)
_CONNECTION_ERRORS = (boto_errors.EndpointConnectionError, boto_errors.ConnectTimeoutError,
                      boto_errors.ProxyConnectionError, boto_errors.SSLError)
_TRANSFER_ERRORS = (boto_errors.BotoCoreError, boto3.exceptions.Boto3Error, s3transfer.exceptions.RetriesExceededError,
                    s3transfer.exceptions.S3DownloadFailedError, s3transfer.exceptions.S3CopyFailedError)


@functools.cache
def _session() -> boto3.session.Session:
    # One per process: a new session re-reads the S3 service model (~0.1-1 s); a shared one makes a client in ms.
    return boto3.session.Session()


_SESSION_LOCK = threading.Lock()  # sessions, unlike clients, are not thread-safe


def _new_client(endpoint_url: str | None, config: Config) -> Any:
    with _SESSION_LOCK:
        return _session().client("s3", endpoint_url=endpoint_url, config=config)


def _error_code(exc: boto_errors.ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


class _HashingReader:
    """A read-only, non-seekable view of a stream that counts (and unless ``hashing=False``, hashes) the bytes
    as they are read.

    Non-seekable on purpose: boto3 then reads each part exactly once, in order, and retries a failed
    request from its own buffer, so the digest covers every byte sent exactly once.
    """

    def __init__(self, src: BinaryIO, progress: Progress | None, *, hashing: bool = True) -> None:
        self._src = src
        self._progress = progress
        self._digest = hashlib.sha256() if hashing else None
        self.size = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def read(self, n: int | None = -1) -> bytes:
        # Fill the request unless at EOF: a short read would make boto3 send a part under S3's 5 MiB minimum.
        chunks: list[bytes] = []
        remaining = None if n is None or n < 0 else n
        while remaining is None or remaining > 0:
            chunk = self._src.read(CHUNK_SIZE if remaining is None else min(CHUNK_SIZE, remaining))
            if not chunk:
                break
            if self._digest is not None:
                self._digest.update(chunk)
            self.size += len(chunk)
            if self._progress:
                self._progress(len(chunk))
            chunks.append(chunk)
            if remaining is not None:
                remaining -= len(chunk)
        return b"".join(chunks)

    def hexdigest(self) -> str:
        assert self._digest is not None, "a reader made with hashing=False has no digest"
        return self._digest.hexdigest()


class _OffsetWriter:
    """``dest`` as boto3 sees it: positions relative to where ``dest`` stood, so parts land after it."""

    def __init__(self, dest: BinaryIO, progress: Progress | None) -> None:
        self._dest = dest
        self._base = dest.tell()
        self._progress = progress
        self.end = 0

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._dest.tell() - self._base

    def seek(self, offset: int, whence: int = 0) -> int:
        if whence == 0:
            return self._dest.seek(self._base + offset) - self._base
        return self._dest.seek(offset, whence) - self._base

    def write(self, data: bytes) -> int:
        n = self._dest.write(data)
        self.end = max(self.end, self.tell())
        if self._progress:
            self._progress(len(data))
        return n

    def finish(self) -> None:
        self._dest.seek(self._base + self.end)  # leave dest after the blob, as a sequential write would


class S3BlobStore(BlobStore):
    """Blobs in an S3 bucket (AWS, or MinIO / Ceph / ... through ``endpoint_url``).

    Credentials and region come from boto3's usual sources (``AWS_ACCESS_KEY_ID`` /
    ``AWS_SECRET_ACCESS_KEY``, ``AWS_PROFILE``, instance roles...). ``progress`` callbacks may run on
    boto3's transfer threads; during a put they count bytes read from the source.
    """

    def __init__(self, bucket: str, prefix: str = "", endpoint_url: str | None = None, *,
                 part_size: int = DEFAULT_PART_SIZE, sse: str | None = None, sse_kms_key_id: str | None = None) -> None:
        """Open a bucket (no request is made until the first operation).

        Args:
            bucket: the bucket name; it must exist.
            prefix: folder inside the bucket, e.g. ``"fmhub/blobs"`` (``""`` for the bucket root).
            endpoint_url: an S3-compatible server, e.g. ``http://127.0.0.1:9000``; ``None`` for AWS.
            part_size: multipart threshold and part size in bytes (≥ 5 MiB).
            sse: the bucket's own server-side encryption for every object written: ``AES256`` (SSE-S3) or
                ``aws:kms`` (SSE-KMS, with ``sse_kms_key_id`` or the bucket's default KMS key).
            sse_kms_key_id: the KMS key of SSE-KMS.

        Raises:
            ConfigError: a malformed bucket, prefix or endpoint.
        """
        if not _BUCKET.fullmatch(bucket):
            raise ConfigError(f"invalid S3 bucket name {bucket!r}",
                              hint="3-63 lowercase letters, digits, '.' or '-', e.g. s3://my-bucket/prefix")
        prefix = prefix.strip("/")
        if prefix and not all(_PREFIX_SEGMENT.fullmatch(s) and s not in (".", "..") for s in prefix.split("/")):
            raise ConfigError(f"invalid S3 key prefix {prefix!r}",
                              hint="use '/'-separated names of letters, digits, '.', '_', '-', '=' or '+'")
        if part_size < _MIN_PART_SIZE:
            raise ConfigError(f"S3 part size must be at least {_MIN_PART_SIZE} bytes, got {part_size}")
        if sse not in (None, "AES256", "aws:kms"):
            raise ConfigError(f"unknown S3 server-side encryption {sse!r}",
                              hint="set FMHUB_S3_SSE to AES256 (SSE-S3) or aws:kms (SSE-KMS)")
        if sse_kms_key_id and sse != "aws:kms":
            raise ConfigError("an SSE-KMS key id is set without SSE-KMS", hint="also set FMHUB_S3_SSE=aws:kms")
        #: Extra arguments of every PUT and copy: the server-side encryption asked for.
        self._sse_args: dict[str, str] = ({"ServerSideEncryption": sse} if sse else {}) | (
            {"SSEKMSKeyId": sse_kms_key_id} if sse_kms_key_id else {})
        if endpoint_url is not None:
            parsed = urlsplit(endpoint_url)
            if parsed.scheme not in ("http", "https") or not parsed.hostname:
                raise ConfigError(f"invalid S3 endpoint URL {endpoint_url!r}",
                                  hint=f"set {ENV_S3_ENDPOINT} to e.g. http://127.0.0.1:9000")
        self.bucket = bucket
        self.prefix = prefix
        self.endpoint_url = endpoint_url
        self.url = f"s3://{bucket}/{prefix}" if prefix else f"s3://{bucket}"
        self._root = f"{prefix}/" if prefix else ""
        self._tmp = f"{self._root}tmp/"
        self._part_size = part_size
        self._bucket_exists = False  # learnt on first need: a HEAD 404 does not say if the key or the bucket is missing

        config = Config(
            retries={"mode": "standard", "max_attempts": 5},
            max_pool_connections=2 * _CONCURRENCY,
            # S3-compatible servers (MinIO, Ceph) are usually addressed by path, not by bucket subdomain.
            s3={"addressing_style": "path"} if endpoint_url else {},
        )
        try:
            self._client = _new_client(endpoint_url, config)
        except (ValueError, boto_errors.BotoCoreError) as exc:
            raise ConfigError(f"cannot create an S3 client for {self.url}: {exc}",
                              hint=f"check {ENV_S3_ENDPOINT} and your AWS region/credentials settings") from exc
        self._transfer = TransferConfig(multipart_threshold=part_size, multipart_chunksize=part_size,
                                        max_concurrency=_CONCURRENCY, preferred_transfer_client="classic")
        # A documented s3transfer knob that boto3's constructor does not take: bounds a stream's buffers.
        self._transfer.max_in_memory_upload_chunks = _IN_MEMORY_PARTS

    @classmethod
    def from_url(cls, url: str, *, s3_endpoint_url: str | None = None, s3_sse: str | None = None,
                 s3_sse_kms_key_id: str | None = None, **_: object) -> S3BlobStore:
        """Open ``s3://bucket[/prefix]``; ``s3_endpoint_url`` names an S3-compatible server."""
        parsed = urlsplit(url)
        if (parsed.scheme != "s3" or not parsed.netloc or parsed.query or parsed.fragment
                or not _BUCKET.fullmatch(parsed.netloc)):
            raise ConfigError(f"invalid S3 blob URL {url!r}",
                              hint="use s3://bucket/prefix (bucket: 3-63 lowercase letters, digits, '.' or '-')")
        return cls(parsed.netloc, parsed.path, s3_endpoint_url, sse=s3_sse, sse_kms_key_id=s3_sse_kms_key_id)

    def __repr__(self) -> str:
        return f"S3BlobStore({self.url!r}, endpoint_url={self.endpoint_url!r})"

    def _key(self, sha256: str) -> str:
        check_sha256(sha256)
        return f"{self._root}{sha256[:2]}/{sha256[2:4]}/{sha256}"

    # -- errors ---------------------------------------------------------------------------------

    @contextlib.contextmanager
    def _errors(self, sha256: str | None = None) -> Iterator[None]:
        """Translate boto3's errors into fmhub's; a missing key means a missing blob when ``sha256`` is given."""
        try:
            yield
        except boto_errors.ClientError as exc:
            if sha256 is not None and _error_code(exc) in _MISSING:
                self._require_bucket()
                raise BlobNotFoundError(sha256) from None
            raise self._client_error(exc) from exc
        except _CREDENTIAL_ERRORS as exc:
            raise ConfigError(f"no usable AWS credentials for {self.url}: {exc}",
                              hint="set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or AWS_PROFILE)") from exc
        except _CONNECTION_ERRORS as exc:
            where = self.endpoint_url or "AWS S3"
            raise ConfigError(f"cannot reach the S3 endpoint {where} for {self.url}: {exc}",
                              hint=f"start the server, or set {ENV_S3_ENDPOINT} to your S3-compatible "
                                   "server's URL (e.g. http://127.0.0.1:9000)") from exc
        except _TRANSFER_ERRORS as exc:
            raise StorageUnavailableError(f"S3 request on {self.url} failed: {exc}",
                                          hint="retry; check the S3 server's health") from exc

    def _client_error(self, exc: boto_errors.ClientError) -> FmhubError:
        code = _error_code(exc)
        if code == "NoSuchBucket":
            return self._no_bucket_error()
        if code in _DENIED:
            return ConfigError(f"S3 refused access to {self.url} ({code})",
                               hint="set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or AWS_PROFILE) to credentials "
                                    f"that may read and write s3://{self.bucket}/{self._root}")
        message = exc.response.get("Error", {}).get("Message", "")
        operation = getattr(exc, "operation_name", "request")
        return StorageUnavailableError(f"S3 {operation} on {self.url} failed: {code} {message}".rstrip(),
                                       hint="retry; check the S3 server's health")

    def _no_bucket_error(self) -> ConfigError:
        where = f" at {self.endpoint_url}" if self.endpoint_url else ""
        return ConfigError(f"S3 bucket {self.bucket!r} does not exist{where}",
                           hint=f"create the bucket (e.g. aws s3 mb s3://{self.bucket}) or fix {ENV_BLOB_URL}")

    def _require_bucket(self) -> None:
        """Raise ConfigError if the bucket is missing (checked once per store)."""
        if self._bucket_exists:
            return
        try:
            with self._errors():
                self._client.head_bucket(Bucket=self.bucket)
        except FmhubError as exc:
            cause = exc.__cause__
            if isinstance(cause, boto_errors.ClientError) and _error_code(cause) in _MISSING | {"NoSuchBucket"}:
                raise self._no_bucket_error() from None
            raise
        self._bucket_exists = True

    # -- reads ----------------------------------------------------------------------------------

    def _head(self, key: str, sha256: str) -> dict[str, Any] | None:
        """The object's metadata, or None when it does not exist."""
        try:
            with self._errors(sha256):
                return self._client.head_object(Bucket=self.bucket, Key=key)
        except BlobNotFoundError:
            return None

    def exists(self, sha256: str) -> bool:
        return self._head(self._key(sha256), sha256) is not None

    def size(self, sha256: str) -> int:
        head = self._head(self._key(sha256), sha256)
        if head is None:
            raise BlobNotFoundError(sha256)
        return int(head["ContentLength"])

    def iter_chunks(self, sha256: str, start: int = 0, end: int | None = None, *,
                    chunk_size: int = CHUNK_SIZE) -> Iterator[bytes]:
        key = self._key(sha256)
        if start < 0 or (end is not None and end < 0):
            raise InvalidInputError(f"invalid byte range [{start}, {end})", hint="offsets must be ≥ 0")
        if end is not None and end <= start:
            self.size(sha256)  # an empty range of a missing blob is still a missing blob
            return iter(())
        args: dict[str, str] = {}
        if start or end is not None:  # no Range header for the whole blob (an empty one has no valid range)
            args["Range"] = f"bytes={start}-{'' if end is None else end - 1}"
        try:
            # Requested now, not on first iteration, so a missing blob raises before a response starts.
            with self._errors(sha256):
                body = self._client.get_object(Bucket=self.bucket, Key=key, **args)["Body"]
        except FmhubError as exc:
            cause = exc.__cause__
            if isinstance(cause, boto_errors.ClientError) and _error_code(cause) in _UNSATISFIABLE_RANGE:
                return iter(())  # start at or past the end: nothing, as a file read past EOF
            raise
        return self._stream(body, sha256, chunk_size)

    def _stream(self, body: Any, sha256: str, chunk_size: int) -> Iterator[bytes]:
        try:
            with self._errors(sha256):
                yield from body.iter_chunks(chunk_size)
        finally:
            body.close()

    def download(self, sha256: str, dest: BinaryIO, progress: Progress | None = None) -> int:
        """Write a whole blob into ``dest`` at its current position, in parallel ranged GETs when large."""
        key = self._key(sha256)
        size = self.size(sha256)
        seekable = getattr(dest, "seekable", lambda: False)()
        target = _OffsetWriter(dest, progress) if seekable else _ProgressWriter(dest, progress)
        with self._errors(sha256):
            self._client.download_fileobj(self.bucket, key, target, Config=self._transfer)
        if isinstance(target, _OffsetWriter):
            target.finish()
        return size

    def iter_blobs(self) -> Iterator[StoredBlob]:
        paginator = self._client.get_paginator("list_objects_v2")
        with self._errors():
            for page in paginator.paginate(Bucket=self.bucket, Prefix=self._root):
                for obj in page.get("Contents", ()):
                    parts = obj["Key"][len(self._root):].split("/")
                    if (len(parts) == 3 and _HEX2.fullmatch(parts[0]) and _HEX2.fullmatch(parts[1])
                            and _SHA256.fullmatch(parts[2]) and parts[2].startswith(parts[0] + parts[1])):
                        yield StoredBlob(parts[2], int(obj["Size"]), obj["LastModified"].timestamp())

    # -- writes ---------------------------------------------------------------------------------

    def _write(self, src: BinaryIO, *, expected_sha256: str | None, expected_size: int | None,
               progress: Progress | None) -> BlobInfo:
        tmp = f"{self._tmp}{uuid.uuid4()}"
        reader = _HashingReader(src, progress)
        try:
            with self._errors():
                self._client.upload_fileobj(reader, self.bucket, tmp, Config=self._transfer,
                                            ExtraArgs=self._sse_args or None)
            sha256, size = reader.hexdigest(), reader.size
            verify_expected(sha256, size, expected_sha256, expected_size)
            final = self._key(sha256)
            head = self._head(final, sha256)
            if head is not None and int(head["ContentLength"]) == size:
                return BlobInfo(sha256, size, created=False)
            # Server-side copy: the final key appears at once, whole. A concurrent writer of the same
            # bytes may copy too; S3 keeps one object, identical either way.
            with self._errors():
                if size < self._part_size:
                    self._client.copy_object(Bucket=self.bucket, Key=final,
                                             CopySource={"Bucket": self.bucket, "Key": tmp}, **self._sse_args)
                else:  # multipart copy: CopyObject stops at 5 GB
                    self._client.copy({"Bucket": self.bucket, "Key": tmp}, self.bucket, final, Config=self._transfer,
                                      ExtraArgs=self._sse_args or None)
            return BlobInfo(sha256, size, created=True)
        finally:
            self._delete_quietly(tmp)

    def put_named(self, name: str, src: BinaryIO) -> int:
        # A PUT (or a completed multipart upload) appears at once, whole: no temporary key needed.
        reader = _HashingReader(src, None, hashing=False)  # the layer above authenticates its bytes
        with self._errors():
            self._client.upload_fileobj(reader, self.bucket, self._key(name), Config=self._transfer,
                                        ExtraArgs=self._sse_args or None)
        return reader.size

    def _delete_quietly(self, key: str) -> None:
        """Best-effort removal of a temporary key; what it misses, ``clean_temporary`` removes later."""
        with contextlib.suppress(boto_errors.BotoCoreError, boto_errors.ClientError):
            self._client.delete_object(Bucket=self.bucket, Key=key)

    def delete(self, sha256: str) -> None:
        key = self._key(sha256)
        with self._errors():
            self._client.delete_object(Bucket=self.bucket, Key=key)

    # -- leftovers of interrupted writes --------------------------------------------------------

    def _leftover_objects(self) -> Iterator[dict[str, Any]]:
        paginator = self._client.get_paginator("list_objects_v2")
        with self._errors():
            for page in paginator.paginate(Bucket=self.bucket, Prefix=self._tmp):
                yield from page.get("Contents", ())

    def _unfinished_uploads(self) -> Iterator[dict[str, Any]]:
        """Multipart uploads under ``tmp/`` never completed nor aborted (their parts are stored, and billed)."""
        paginator = self._client.get_paginator("list_multipart_uploads")
        with self._errors():
            for page in paginator.paginate(Bucket=self.bucket, Prefix=self._tmp):
                yield from page.get("Uploads", ())

    def temporary_files(self) -> list[str]:
        names = [obj["Key"][len(self._tmp):] for obj in self._leftover_objects()]
        names += [f"{up['Key'][len(self._tmp):]} (unfinished multipart upload)" for up in self._unfinished_uploads()]
        return sorted(names)

    def clean_temporary(self, older_than_seconds: float, *, dry_run: bool = False) -> tuple[int, int]:
        cutoff = time.time() - older_than_seconds
        removed = freed = 0
        stale = [obj for obj in self._leftover_objects() if obj["LastModified"].timestamp() < cutoff]
        old = [obj["Key"] for obj in stale]
        if dry_run:
            removed, freed = len(old), sum(obj.get("Size", 0) for obj in stale)
            old = []
        for i in range(0, len(old), 1000):  # DeleteObjects takes at most 1000 keys
            with self._errors():
                response = self._client.delete_objects(
                    Bucket=self.bucket, Delete={"Objects": [{"Key": k} for k in old[i:i + 1000]], "Quiet": True})
            failed = {error.get("Key") for error in response.get("Errors", ())}
            removed += len(old[i:i + 1000]) - len(failed)
            freed += sum(obj.get("Size", 0) for obj in stale[i:i + 1000] if obj["Key"] not in failed)
        for upload in self._unfinished_uploads():
            if upload["Initiated"].timestamp() >= cutoff or self._last_part_time(upload) >= cutoff:
                continue  # started or still sending parts recently: perhaps a live upload
            if dry_run:
                removed += 1
                continue
            with self._errors():
                try:
                    self._client.abort_multipart_upload(Bucket=self.bucket, Key=upload["Key"],
                                                        UploadId=upload["UploadId"])
                except boto_errors.ClientError as exc:
                    if _error_code(exc) != "NoSuchUpload":  # finished or aborted meanwhile
                        raise
                    continue
            removed += 1
        return removed, freed

    def _last_part_time(self, upload: dict[str, Any]) -> float:
        latest = 0.0
        paginator = self._client.get_paginator("list_parts")
        with self._errors():
            try:
                for page in paginator.paginate(Bucket=self.bucket, Key=upload["Key"], UploadId=upload["UploadId"]):
                    for part in page.get("Parts", ()):
                        latest = max(latest, part["LastModified"].timestamp())
            except boto_errors.ClientError as exc:
                if _error_code(exc) != "NoSuchUpload":
                    raise
        return latest

    def close(self) -> None:
        self._client.close()


class _ProgressWriter:
    """A non-seekable ``dest`` with progress reporting (boto3 then writes the parts in order)."""

    def __init__(self, dest: BinaryIO, progress: Progress | None) -> None:
        self._dest = dest
        self._progress = progress

    def seekable(self) -> bool:
        return False

    def write(self, data: bytes) -> int:
        n = self._dest.write(data)
        if self._progress:
            self._progress(len(data))
        return n
