"""The OpenSSF model-signing signature format, key-based, read and written with ``cryptography`` and ``json`` alone.

A signature (``model.sig``) is a Sigstore bundle (media type v0.3, JSON) whose ``verificationMaterial`` names the
public key by its hint (sha256 of its PEM) and whose ``dsseEnvelope`` holds an in-toto statement::

    subject:        [{name: <model name>, digest: {sha256: sha256 of every resource digest, in order}}]
    predicateType:  https://model_signing/signature/v1.0
    predicate:      {serialization: {method: files, hash_type: sha256, allow_symlinks, ignore_paths},
                     resources: [{name: <path>, algorithm: sha256, digest: <hex>}, …]}

This is the format the ``model-signing`` package writes and reads with its ``sign_ec_key`` signer and verifier
(tests check both directions). Why not call that package here: importing it loads Sigstore's whole client
(TUF, boto3, pydantic and protobuf models: over a second), which dwarfed the hashing itself when ``fmhub sign``
or ``fmhub verify`` runs as a fresh process. The format is a page of JSON; the cryptography is the same calls.
"""

from __future__ import annotations

import base64
import concurrent.futures
import hashlib
import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

__all__ = ["BUNDLE_MEDIA_TYPE", "PREDICATE_TYPE", "Statement", "hash_files", "encode", "decode"]

BUNDLE_MEDIA_TYPE = "application/vnd.dev.sigstore.bundle.v0.3+json"
PAYLOAD_TYPE = "application/vnd.in-toto+json"
STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
PREDICATE_TYPE = "https://model_signing/signature/v1.0"
_PREDICATE_TYPE_V01 = "https://model_signing/Digests/v0.1"  # model-signing before 1.0: subjects are the files
_CHUNK = 1 << 20

#: A statement's content: model name, serialization parameters, path -> sha256 hex (in the signed order).
Statement = tuple[str, dict[str, Any], dict[str, str]]


def _sha256_file(path: Path) -> str:
    with open(path, "rb", buffering=0) as f:
        return hashlib.file_digest(f, "sha256").hexdigest()  # hashing releases the GIL: files hash in parallel


def hash_files(folder: Path, ignore: Iterable[str]) -> dict[str, str]:
    """Every regular file under ``folder`` (posix path relative to it) → sha256 hex, but those under ``ignore``
    (folder-relative paths), each file read once, files hashed in parallel threads.

    Raises:
        ValueError: a symbolic link, or something neither a file nor a folder (as model-signing refuses them).
    """
    folder = Path(folder)
    if folder.is_symlink() or not folder.is_dir():
        raise ValueError(f"Cannot use '{folder}': not a folder (or a symlink to one)")
    ignored = tuple(p.strip("/") for p in ignore)
    paths: list[tuple[str, Path]] = []
    for root, dirs, files in os.walk(folder):
        for name in (*dirs, *files):
            path = Path(root, name)
            if path.is_symlink():
                raise ValueError(f"Cannot use '{path}' because it is a symlink")
            if name in files and not path.is_file():
                raise ValueError(f"Cannot use '{path}' as file or directory: it is a special file")
        dirs.sort()
        for name in files:
            rel = Path(root, name).relative_to(folder).as_posix()
            if not any(rel == p or rel.startswith(p + "/") for p in ignored):
                paths.append((rel, Path(root, name)))
    if len(paths) == 1:  # no thread for a lone file
        return {paths[0][0]: _sha256_file(paths[0][1])}
    with concurrent.futures.ThreadPoolExecutor(max_workers=min(len(paths), (os.cpu_count() or 1) + 2) or 1) as pool:
        digests = pool.map(_sha256_file, [p for _, p in paths])
        return {rel: digest for (rel, _), digest in zip(paths, digests, strict=True)}


def _pae(payload: bytes) -> bytes:
    """DSSE's pre-authentication encoding: what is actually signed."""
    return b"DSSEv1 %d %s %d %s" % (len(PAYLOAD_TYPE), PAYLOAD_TYPE.encode(), len(payload), payload)


def _pae_v02(payload: bytes) -> bytes:
    """model-signing 0.2's encoding (a bug it keeps accepting: the payload's ``repr`` was signed)."""
    return f"DSSEV1 {len(PAYLOAD_TYPE)} {PAYLOAD_TYPE} {len(payload)} {payload!r}".encode()


def _hash_for(key: Any) -> Any:
    from cryptography.hazmat.primitives import hashes

    return {256: hashes.SHA256, 384: hashes.SHA384, 521: hashes.SHA512}[key.curve.key_size]()


def _hint(public_key: Any) -> str:
    from cryptography.hazmat.primitives import serialization

    pem = public_key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha256(pem).hexdigest()


def encode(model_name: str, files: dict[str, str], ignore_paths: Iterable[str], private_key: Any) -> bytes:
    """The bundle (JSON bytes) signing ``files`` (path → sha256 hex) with an EC ``private_key``."""
    from cryptography.hazmat.primitives.asymmetric import ec

    ordered = sorted(files.items())
    root = hashlib.sha256(b"".join(bytes.fromhex(d) for _, d in ordered)).hexdigest()
    statement = {
        "_type": STATEMENT_TYPE,
        "subject": [{"name": model_name, "digest": {"sha256": root}}],
        "predicateType": PREDICATE_TYPE,
        "predicate": {
            "serialization": {"method": "files", "hash_type": "sha256", "allow_symlinks": False,
                              "ignore_paths": sorted(set(ignore_paths))},
            "resources": [{"name": path, "algorithm": "sha256", "digest": digest} for path, digest in ordered],
        },
    }
    payload = json.dumps(statement, indent=2).encode()
    signature = private_key.sign(_pae(payload), ec.ECDSA(_hash_for(private_key.public_key())))
    bundle = {"mediaType": BUNDLE_MEDIA_TYPE,
              "verificationMaterial": {"publicKey": {"hint": _hint(private_key.public_key())}, "tlogEntries": []},
              "dsseEnvelope": {"payload": base64.b64encode(payload).decode(), "payloadType": PAYLOAD_TYPE,
                               "signatures": [{"sig": base64.b64encode(signature).decode(), "keyid": ""}]}}
    return json.dumps(bundle).encode()


def decode(data: bytes, public_pem: str) -> Statement:
    """Check a bundle's signature with ``public_pem`` and return what it signs.

    Raises:
        ValueError: not a model-signing bundle, another key's, a signature that does not verify, or a statement
            whose resources do not add up to its subject digest.
    """
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    try:
        bundle = json.loads(data)
        if bundle.get("mediaType") != BUNDLE_MEDIA_TYPE:
            raise ValueError(f"media type {bundle.get('mediaType')!r}, expected {BUNDLE_MEDIA_TYPE}")
        envelope = bundle["dsseEnvelope"]
        payload = base64.b64decode(envelope["payload"], validate=True)
        sig = base64.b64decode(envelope["signatures"][0]["sig"], validate=True)
        hint = (bundle["verificationMaterial"].get("publicKey") or {}).get("hint")
    except (KeyError, IndexError, TypeError, AttributeError, json.JSONDecodeError) as exc:
        raise ValueError(f"not a signature bundle ({type(exc).__name__}: {exc})") from None
    key = serialization.load_pem_public_key(public_pem.encode())
    if not isinstance(key, ec.EllipticCurvePublicKey):
        raise ValueError("not an EC public key")
    if hint and hint != _hint(key):
        raise ValueError("the signature names another public key")
    if envelope.get("payloadType") != PAYLOAD_TYPE:
        raise ValueError(f"payload type {envelope.get('payloadType')!r}, expected {PAYLOAD_TYPE}")
    algorithm = ec.ECDSA(_hash_for(key))
    try:
        key.verify(sig, _pae(payload), algorithm)
    except InvalidSignature:
        try:
            key.verify(sig, _pae_v02(payload), algorithm)
        except InvalidSignature:
            raise ValueError("the signature does not verify") from None
    try:
        statement = json.loads(payload)
        if statement["_type"] != STATEMENT_TYPE:
            raise ValueError(f"statement type {statement['_type']!r}, expected {STATEMENT_TYPE}")
        if statement["predicateType"] == _PREDICATE_TYPE_V01:
            files = {s["name"]: s["digest"]["sha256"] for s in statement["subject"]}
            return "compat-undefined-not-present", {"method": "files", "hash_type": "sha256"}, files
        if statement["predicateType"] != PREDICATE_TYPE:
            raise ValueError(f"predicate type {statement['predicateType']!r}, expected {PREDICATE_TYPE}")
        (subject,) = statement["subject"]
        predicate = statement["predicate"]
        root = hashlib.sha256()
        files = {}
        for resource in predicate["resources"]:
            if resource["algorithm"] != "sha256":
                raise ValueError(f"{resource['name']} is hashed with {resource['algorithm']}, not sha256")
            digest = bytes.fromhex(resource["digest"])
            root.update(digest)
            files[str(resource["name"])] = digest.hex()
        if root.hexdigest() != subject["digest"]["sha256"]:
            raise ValueError("the manifest is inconsistent: its resources do not hash to its subject digest")
        return str(subject["name"]), dict(predicate["serialization"]), files
    except (KeyError, TypeError, AttributeError, json.JSONDecodeError) as exc:
        raise ValueError(f"not a model-signing statement ({type(exc).__name__}: {exc})") from None
