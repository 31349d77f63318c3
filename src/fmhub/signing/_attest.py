"""Hub attestations: in-toto statements with an SLSA-provenance-style predicate, signed by the hub's own key
(DSSE envelopes), of what the hub imported, trained, evaluated and optimized.

The hub builds each statement from what it holds, never from what a client says: the output commit's files and
their sha256 from its own store, the inputs (repo, commit) from its run record, report card or variant card,
each input checked to exist on the hub. A metric on an attested report card therefore reads "computed by
this hub from these predictions on that data commit", verifiable offline with the hub's public key.

Statement (https://in-toto.io/Statement/v1)::

    subject:        [{name: <path in the repo>, digest: {sha256: …}}, …]   the produced files
    predicateType:  https://slsa.dev/provenance/v1
    predicate:
      buildDefinition:
        buildType:            https://fmhub.dev/attestation/<import|train|evaluate|optimize>/v1
        externalParameters:   {command, config, output: {repo, repo_type, commit}}
        internalParameters:   {environment: {code_version, libraries, hardware}}
        resolvedDependencies: [{uri: fmhub:<type>/<repo>@<commit>, name, digest: {gitCommit}, annotations: {role}}]
      runDetails:
        builder:  {id: fmhub-hub:<key fingerprint>, version: {fmhub: …}}
        metadata: {invocationId, startedOn, finishedOn}
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from sqlalchemy import insert, select

from fmhub._version import __version__
from fmhub.errors import FmhubError, InvalidInputError, SignatureError
from fmhub.signing import _tables as t
from fmhub.signing._keys import hub_key, private_key_fingerprint
from fmhub.signing._model import TrustedKey, is_unsigned_path
from fmhub.store import Store

__all__ = ["STATEMENT_TYPE", "PREDICATE_TYPE", "PAYLOAD_TYPE", "Material", "AttestationRecord", "Attestor",
           "sign_statement", "open_envelope", "hub_public_key", "attested_files"]

STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
PREDICATE_TYPE = "https://slsa.dev/provenance/v1"
PAYLOAD_TYPE = "application/vnd.in-toto+json"
BUILD_TYPE = "https://fmhub.dev/attestation/{kind}/v1"
KINDS = ("import", "train", "evaluate", "optimize")


@dataclass(frozen=True)
class Material:
    """An input of a stage: a repo at a commit, and its role (``base_model``, ``dataset``, ``parent``...)."""

    repo_type: str
    repo_id: str
    commit: str
    role: str

    def to_json(self) -> dict[str, Any]:
        return {"uri": f"fmhub:{self.repo_type}/{self.repo_id}@{self.commit}", "name": self.repo_id,
                "digest": {"gitCommit": self.commit}, "annotations": {"role": self.role,
                                                                      "repo_type": self.repo_type}}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Material:
        notes = data.get("annotations") or {}
        return cls(str(notes.get("repo_type", "model")), str(data["name"]), str(data["digest"]["gitCommit"]),
                   str(notes.get("role", "")))

    @property
    def ref(self) -> str:
        return f"{self.repo_id}@{self.commit[:12]}"


@dataclass(frozen=True)
class AttestationRecord:
    """A stored attestation: which commit of which repo it is about, and the signed envelope (JSON)."""

    repo_type: str
    repo_id: str
    commit: str
    kind: str
    subject_path: str
    envelope: str
    created_at: datetime

    def to_json(self) -> dict[str, Any]:
        return {"repo_type": self.repo_type, "repo_id": self.repo_id, "commit": self.commit, "kind": self.kind,
                "subject_path": self.subject_path, "envelope": json.loads(self.envelope),
                "created_at": self.created_at.isoformat()}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> AttestationRecord:
        created = datetime.fromisoformat(data["created_at"])
        return cls(data["repo_type"], data["repo_id"], data["commit"], data["kind"], data["subject_path"],
                   json.dumps(data["envelope"], sort_keys=True), created)


def _pae(payload_type: str, payload: bytes) -> bytes:
    """DSSE's pre-authentication encoding: what is actually signed."""
    kind = payload_type.encode()
    return b"DSSEv1 %d %s %d %s" % (len(kind), kind, len(payload), payload)


def sign_statement(statement: dict[str, Any], key: ec.EllipticCurvePrivateKey) -> str:
    """A DSSE envelope (JSON text) of ``statement`` signed by ``key`` (ECDSA P-256 / SHA-256)."""
    payload = json.dumps(statement, sort_keys=True, separators=(",", ":")).encode()
    signature = key.sign(_pae(PAYLOAD_TYPE, payload), ec.ECDSA(hashes.SHA256()))
    return json.dumps({"payloadType": PAYLOAD_TYPE, "payload": base64.b64encode(payload).decode(),
                       "signatures": [{"keyid": private_key_fingerprint(key),
                                       "sig": base64.b64encode(signature).decode()}]}, sort_keys=True)


def open_envelope(envelope: str, key: TrustedKey, *, what: str) -> dict[str, Any]:
    """The statement inside a DSSE envelope, once its signature by ``key`` is checked.

    Raises:
        SignatureError: not an envelope, not signed by ``key``, or not an fmhub provenance statement (``invalid``).
    """
    try:
        data = json.loads(envelope)
        payload = base64.b64decode(data["payload"], validate=True)
        signatures = data["signatures"]
        public = serialization.load_pem_public_key(key.public_pem.encode())
        if not any(s.get("keyid") == key.fingerprint for s in signatures):
            raise SignatureError(f"the attestation of {what} is not signed by this hub's key {key.fingerprint[:16]}",
                                 reason="untrusted", item=what)
        sig = next(s for s in signatures if s.get("keyid") == key.fingerprint)
        public.verify(base64.b64decode(sig["sig"]), _pae(data["payloadType"], payload),  # type: ignore[union-attr]
                      ec.ECDSA(hashes.SHA256()))
        statement = json.loads(payload)
    except SignatureError:
        raise
    except (InvalidSignature, ValueError, KeyError, TypeError) as exc:
        raise SignatureError(f"the attestation of {what} does not verify with the hub's key "
                             f"({type(exc).__name__})", reason="invalid", item=what) from None
    if statement.get("_type") != STATEMENT_TYPE or statement.get("predicateType") != PREDICATE_TYPE:
        raise SignatureError(f"the attestation of {what} is not an in-toto SLSA provenance statement",
                             reason="invalid", item=what)
    return statement


def attested_files(statement: dict[str, Any]) -> dict[str, str]:
    """The subjects of a statement: path → sha256."""
    return {str(s["name"]): str(s["digest"]["sha256"]) for s in statement.get("subject", [])}


def hub_public_key(path: Path) -> TrustedKey:
    """The public half of the hub's attestation key (``FMHUB_SIGNING_KEY``), created on first use."""
    key = hub_key(path)
    pem = key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    return TrustedKey.from_pem(pem, name="hub")


def _model_files(paths: dict[str, str]) -> dict[str, str]:
    """The files a train or optimize attestation covers: the model, not its card text or later cards (eval
    pushes rewrite README.md and add eval/; a signature is committed after)."""
    return {p: d for p, d in paths.items()
            if not is_unsigned_path(p) and p != "README.md" and not p.startswith("eval/")}


def _aware(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Attestor:
    """Builds, signs and stores the hub's attestations over ``store`` with the key at ``key_path``.

    Example:
        >>> Attestor(store, settings().signing_key).attest_variant("acme/clf-int8", commit)
    """

    def __init__(self, store: Store, key_path: Path) -> None:
        self.store = store
        self.key_path = Path(key_path)

    # -- reading ----------------------------------------------------------------------------------

    def list(self, repo_id: str, *, repo_type: str = "model") -> list[AttestationRecord]:
        """Every attestation about ``repo_id``, oldest first."""
        with self.store.db.read() as conn:
            rows = conn.execute(select(t.attestations).where(t.attestations.c.repo_type == repo_type,
                                                             t.attestations.c.repo_id == repo_id)
                                .order_by(t.attestations.c.pk)).all()
        return [AttestationRecord(r.repo_type, r.repo_id, r.commit, r.kind, r.subject_path, r.envelope,
                                  _aware(r.created_at)) for r in rows]

    # -- writing ----------------------------------------------------------------------------------

    def _files(self, repo_type: str, repo_id: str, commit: str) -> dict[str, str]:
        return {e.path: e.blob_sha256 for e in self.store.list_files(repo_id, commit, repo_type=repo_type)}

    def _check_inputs(self, materials: Iterable[Material]) -> list[Material]:
        checked = []
        for material in materials:
            try:
                self.store.get_commit(material.repo_id, material.commit, repo_type=material.repo_type)
            except FmhubError as exc:
                raise InvalidInputError(f"cannot attest: input {material.repo_type} {material.ref} does not exist "
                                        "on this hub", hint="attestations name only inputs the hub holds") from exc
            checked.append(material)
        return checked

    def record(self, kind: str, repo_type: str, repo_id: str, commit: str, subjects: dict[str, str], *,
               materials: Sequence[Material], command: str, config: dict[str, Any],
               environment: dict[str, Any] | None = None, invocation_id: str | None = None,
               started: datetime | None = None, finished: datetime | None = None,
               subject_path: str = "", check_inputs: bool = True) -> AttestationRecord:
        """Sign and store a statement that the hub made ``subjects`` (path → sha256) of ``repo_id@commit`` from
        ``materials`` by ``command`` with ``config``.

        Raises:
            InvalidInputError: an unknown kind, no subject, or (``check_inputs``) an input the hub does not hold.
        """
        if kind not in KINDS:
            raise InvalidInputError(f"unknown attestation kind {kind!r}", hint=f"one of {', '.join(KINDS)}")
        if not subjects:
            raise InvalidInputError(f"nothing to attest in {repo_id}@{commit[:12]}")
        if check_inputs:
            materials = self._check_inputs(materials)
        key = hub_key(self.key_path)
        now = datetime.now(UTC)
        statement = {
            "_type": STATEMENT_TYPE,
            "subject": [{"name": path, "digest": {"sha256": digest}} for path, digest in sorted(subjects.items())],
            "predicateType": PREDICATE_TYPE,
            "predicate": {
                "buildDefinition": {
                    "buildType": BUILD_TYPE.format(kind=kind),
                    "externalParameters": {"command": command, "config": config,
                                           "output": {"repo": repo_id, "repo_type": repo_type, "commit": commit}},
                    "internalParameters": {"environment": environment or {}},
                    "resolvedDependencies": [m.to_json() for m in materials],
                },
                "runDetails": {
                    "builder": {"id": f"fmhub-hub:{private_key_fingerprint(key)}", "version": {"fmhub": __version__}},
                    "metadata": {"invocationId": invocation_id or f"{kind}:{repo_id}@{commit}",
                                 "startedOn": (started or now).isoformat(),
                                 "finishedOn": (finished or now).isoformat()},
                },
            },
        }
        envelope = sign_statement(statement, key)
        with self.store.db.write() as conn:
            conn.execute(insert(t.attestations).values(repo_type=repo_type, repo_id=repo_id, commit=commit, kind=kind,
                                                       subject_path=subject_path, envelope=envelope,
                                                       created_at=now))
        return AttestationRecord(repo_type, repo_id, commit, kind, subject_path, envelope, now)

    def attest_run(self, run: Any) -> AttestationRecord | None:
        """Attest a completed training run (a :class:`fmhub.runs.RunInfo`): its output commit's model files, from
        its base model and dataset commits, with its command, resolved config and environment.

        Returns None, attesting nothing, when the run published nothing or the hub does not hold its output or
        one of its inputs (a run record may name commits of another hub; the hub attests only what it holds).
        """
        if run.status != "completed" or not run.output or not run.output_commit:
            return None
        try:
            files = self._files("model", run.output, run.output_commit)
        except FmhubError:
            return None
        materials = []
        if run.base_model and run.base_commit:
            materials.append(Material("model", run.base_model, run.base_commit, "base_model"))
        if run.dataset and run.dataset_commit:
            materials.append(Material("dataset", run.dataset, run.dataset_commit, "dataset"))
        subjects = _model_files(files)
        if not subjects:
            return None
        try:
            self._check_inputs(materials)
        except InvalidInputError:
            return None
        return self.record("train", "model", run.output, run.output_commit, subjects, materials=materials,
                           command=run.command, config=run.config,
                           environment={"code_version": run.code_version, "libraries": run.libraries,
                                        "hardware": run.hardware},
                           invocation_id=run.id, started=run.started_at, finished=run.ended_at,
                           check_inputs=False)

    def attest_evaluation(self, repo_id: str, commit: str, report_path: str) -> AttestationRecord | None:
        """Attest a report card the hub indexed: the card and the files beside it (predictions, plots), computed
        from the model and dataset commits its provenance names.

        Returns None, attesting nothing, when the hub does not hold one of those inputs (a card evaluated
        elsewhere: the hub attests only what it can check)."""
        report = json.loads(self.store.read_bytes(repo_id, report_path, commit))
        prov = report["provenance"]
        folder = report_path.rsplit("/", 1)[0] + "/"
        subjects = {p: d for p, d in self._files("model", repo_id, commit).items() if p.startswith(folder)}
        materials = [Material("model", prov["model"]["repo"], prov["model"]["commit"], "model"),
                     Material("dataset", prov["dataset"]["repo"], prov["dataset"]["commit"],
                              f"dataset ({prov['dataset'].get('split')} split)")]
        env = {"code_version": prov.get("fmhub_version"), "libraries": prov.get("libraries") or {},
               "hardware": prov.get("hardware") or {}}
        try:
            self._check_inputs(materials)
        except InvalidInputError:
            return None
        return self.record("evaluate", "model", repo_id, commit, subjects, materials=materials,
                           command="fmhub eval", config=prov.get("options") or {}, environment=env,
                           subject_path=report_path, check_inputs=False)

    def attest_variant(self, repo_id: str, commit: str) -> AttestationRecord:
        """Attest an optimized variant (``fmhub optimize``): its model files, from the parent commit its card's
        ``fmhub.lineage`` names, with the method's options (``optimize_args.json``)."""
        from fmhub.cards import parse_card  # (YAML) attesting reads a card; verifying never does

        files = self._files("model", repo_id, commit)
        card = parse_card(self.store.read_bytes(repo_id, "README.md", commit).decode("utf-8", errors="replace")) \
            if "README.md" in files else None
        fmhub_meta = (card.metadata.get("fmhub") if card else None) or {}
        lineage = fmhub_meta.get("lineage") or {}
        variant = fmhub_meta.get("variant") or {}
        if not lineage.get("parent") or not lineage.get("parent_commit"):
            raise InvalidInputError(f"{repo_id}@{commit[:12]} is not an fmhub variant (its card names no parent)")
        args = json.loads(self.store.read_bytes(repo_id, "optimize_args.json", commit)) \
            if "optimize_args.json" in files else {}
        materials = [Material("model", lineage["parent"], lineage["parent_commit"], "parent")]
        return self.record("optimize", "model", repo_id, commit, _model_files(files), materials=materials,
                           command=f"fmhub optimize {variant.get('method', '')}".strip(), config=args)

    def attest_import(self, repo_id: str, commit: str) -> AttestationRecord:
        """Attest a dataset version ``fmhub data import`` wrote (texts or images): its data files and quality report,
        made from the source its card names (file name, and the sha256 manifest of the source's files), with the
        import's recipe (split, seed, redaction) and the content hash of the rows, all read from the commit.

        Idempotent: a commit already attested as an import returns that attestation.

        Raises:
            InvalidInputError: the commit's card is not one ``fmhub data import`` wrote.
        """
        for existing in self.list(repo_id, repo_type="dataset"):
            if existing.commit == commit and existing.kind == "import":
                return existing
        from fmhub.cards import parse_card

        files = self._files("dataset", repo_id, commit)
        card = parse_card(self.store.read_bytes(repo_id, "README.md", commit, repo_type="dataset")
                          .decode("utf-8", errors="replace")) if "README.md" in files else None
        meta = card.metadata if card else {}
        fmhub_meta = meta.get("fmhub") or {}
        if not isinstance(fmhub_meta, dict) or "split_recipe" not in fmhub_meta or not meta.get("content_hash"):
            raise InvalidInputError(f"{repo_id}@{commit[:12]} is not an fmhub data import (its card has no split "
                                    "recipe and content hash)", hint="import it with fmhub data import")
        subjects = {p: d for p, d in files.items() if not is_unsigned_path(p) and p != "README.md"}
        config = {"source": meta.get("source"), "source_files": fmhub_meta.get("source_files"),
                  "content_hash": meta.get("content_hash"), "split_recipe": fmhub_meta.get("split_recipe"),
                  "pii_redacted": fmhub_meta.get("pii_redacted", False),
                  "minhash_threshold": fmhub_meta.get("minhash_threshold"),
                  "task_categories": meta.get("task_categories"), "license": meta.get("license")}
        return self.record("import", "dataset", repo_id, commit, subjects, materials=[],
                           command="fmhub data import", config=config,
                           environment={"code_version": __version__})
