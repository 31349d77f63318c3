"""Signed model versions: OpenSSF model-signing signatures (key-based), the keys a hub trusts per namespace,
signature policies on refs, and the hub's own attestations of what it trained, evaluated and optimized.

The format is the OpenSSF one (``model.sig`` beside the files, a Sigstore bundle over an in-toto statement
listing every file's sha256), so a version verifies offline with ``fmhub verify`` or with the
``model_signing`` tool. Stages reach this through the Hub client (``hub.sign``, ``hub.verify``); the hub
keeps trusted keys and policies in its database (:class:`TrustedKeys`), never a private key.

Example:
    >>> from fmhub.signing import create_key_pair, sign_folder, verify_folder, TrustedKey
    >>> pair = create_key_pair(Path("release.key"))
    >>> (folder / "model.sig").write_bytes(sign_folder(folder, pair.private_path))
    >>> verify_folder(folder, [TrustedKey.from_pem(pair.public_path.read_bytes())])

Names are imported on first use (PEP 562): signing and verifying a folder load neither the store nor
SQLAlchemy, so a fresh ``fmhub verify`` process starts fast.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from fmhub._lazy import lazy_names

if TYPE_CHECKING:
    from fmhub.signing._attest import (
        PREDICATE_TYPE,
        STATEMENT_TYPE,
        AttestationRecord,
        Attestor,
        Material,
        attested_files,
        hub_public_key,
        open_envelope,
        sign_statement,
    )
    from fmhub.signing._keys import (
        KeyPair,
        create_key_pair,
        fingerprint,
        hub_key,
        load_private_key,
        private_key_fingerprint,
        public_key_pem,
    )
    from fmhub.signing._model import (
        SIGNATURE_FILE,
        UNSIGNED_PATHS,
        SignedManifest,
        TrustedKey,
        check_files,
        hash_folder,
        is_unsigned_path,
        read_signature,
        sign_files,
        sign_folder,
        verify_folder,
    )
    from fmhub.signing._provenance import Link, first_failure, trace
    from fmhub.signing._trust import SigningPolicy, TrustedKeys, check_namespace, check_ref_pattern

__all__ = [
    "PREDICATE_TYPE",
    "STATEMENT_TYPE",
    "AttestationRecord",
    "Attestor",
    "Link",
    "Material",
    "attested_files",
    "first_failure",
    "hub_public_key",
    "open_envelope",
    "sign_statement",
    "trace",
    "SIGNATURE_FILE",
    "UNSIGNED_PATHS",
    "KeyPair",
    "SignedManifest",
    "SigningPolicy",
    "TrustedKey",
    "TrustedKeys",
    "check_files",
    "check_namespace",
    "check_ref_pattern",
    "create_key_pair",
    "fingerprint",
    "hash_folder",
    "hub_key",
    "is_unsigned_path",
    "load_private_key",
    "private_key_fingerprint",
    "public_key_pem",
    "read_signature",
    "sign_files",
    "sign_folder",
    "verify_folder",
]

_LAZY = {
    "PREDICATE_TYPE": "fmhub.signing._attest",
    "STATEMENT_TYPE": "fmhub.signing._attest",
    "AttestationRecord": "fmhub.signing._attest",
    "Attestor": "fmhub.signing._attest",
    "Material": "fmhub.signing._attest",
    "attested_files": "fmhub.signing._attest",
    "hub_public_key": "fmhub.signing._attest",
    "open_envelope": "fmhub.signing._attest",
    "sign_statement": "fmhub.signing._attest",
    "KeyPair": "fmhub.signing._keys",
    "create_key_pair": "fmhub.signing._keys",
    "fingerprint": "fmhub.signing._keys",
    "hub_key": "fmhub.signing._keys",
    "load_private_key": "fmhub.signing._keys",
    "private_key_fingerprint": "fmhub.signing._keys",
    "public_key_pem": "fmhub.signing._keys",
    "SIGNATURE_FILE": "fmhub.signing._model",
    "UNSIGNED_PATHS": "fmhub.signing._model",
    "SignedManifest": "fmhub.signing._model",
    "TrustedKey": "fmhub.signing._model",
    "check_files": "fmhub.signing._model",
    "hash_folder": "fmhub.signing._model",
    "is_unsigned_path": "fmhub.signing._model",
    "read_signature": "fmhub.signing._model",
    "sign_files": "fmhub.signing._model",
    "sign_folder": "fmhub.signing._model",
    "verify_folder": "fmhub.signing._model",
    "Link": "fmhub.signing._provenance",
    "first_failure": "fmhub.signing._provenance",
    "trace": "fmhub.signing._provenance",
    "SigningPolicy": "fmhub.signing._trust",
    "TrustedKeys": "fmhub.signing._trust",
    "check_namespace": "fmhub.signing._trust",
    "check_ref_pattern": "fmhub.signing._trust",
}


__getattr__, __dir__ = lazy_names("fmhub.signing", _LAZY, globals())
