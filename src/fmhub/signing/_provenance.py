"""The chain from a model version back to its data, each link checked: the hub's attestation of how the
version was made (signed by the hub's key, its files unchanged since), each input it names (exists on the hub,
and in turn attested), and the version's report cards (attested, unchanged since). The chain ends at a dataset
the hub imported: its import attestation names the source files (a sha256 manifest) and the recipe."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from fmhub.errors import SignatureError
from fmhub.signing._attest import AttestationRecord, Material, attested_files, open_envelope
from fmhub.signing._model import TrustedKey

__all__ = ["Link", "trace", "first_failure"]

#: (repo_type, repo_id, commit) → path → sha256 of that commit's files, or None when it does not exist.
FilesOf = Callable[[str, str, str], dict[str, str] | None]
#: (repo_type, repo_id, commit) → the commit and its first-parent ancestors, newest first.
HistoryOf = Callable[[str, str, str], list[str]]
#: (repo_type, repo_id) → the hub's attestations about the repo.
AttestationsOf = Callable[[str, str], list[AttestationRecord]]


@dataclass(frozen=True)
class Link:
    """One checked link: ``ok`` False means the chain is broken here (``reason``, ``item`` name what failed)."""

    depth: int
    subject: str  # repo@commit, or a card path
    role: str  # model | base_model | dataset | parent | train | optimize | evaluate ...
    ok: bool
    detail: str
    reason: str | None = None
    item: str | None = None


def first_failure(links: list[Link]) -> SignatureError | None:
    """The first broken link as the error a command raises (None when every link holds)."""
    for link in links:
        if not link.ok:
            return SignatureError(f"provenance of {link.subject}: {link.detail}", reason=link.reason or "invalid",
                                  item=link.item, hint="the chain is broken at this link; see fmhub verify")
    return None


def _check_subjects(attested: dict[str, str], files: dict[str, str]) -> tuple[str, str] | None:
    """(reason, path) of the first attested file that is not in ``files`` with the attested sha256."""
    for path, digest in sorted(attested.items()):
        if path not in files:
            return "removed", path
        if files[path] != digest:
            return "changed", path
    return None


def _source(statement: dict) -> str:
    """How an import attestation names its source: the file or folder, and the sha256 of its files' manifest."""
    config = statement["predicate"]["buildDefinition"]["externalParameters"].get("config") or {}
    read = config.get("source_files") or {}
    digest = f", {read.get('files')} file(s), manifest sha256 {str(read.get('sha256'))[:16]}…" if read else ""
    return f"source {config.get('source')!s}{digest}"


def trace(repo_type: str, repo_id: str, commit: str, *, hub_key: TrustedKey, files_of: FilesOf,
          history_of: HistoryOf, attestations_of: AttestationsOf, max_depth: int = 8) -> list[Link]:
    """Every link from ``repo_id@commit`` back to its data, depth first (see the module doc)."""
    links: list[Link] = []
    visited: set[tuple[str, str, str]] = set()

    def add(depth: int, subject: str, role: str, ok: bool, detail: str, reason: str | None = None,
            item: str | None = None) -> None:
        links.append(Link(depth, subject, role, ok, detail, reason, item))

    def exists(material: Material, depth: int) -> bool:
        if files_of(material.repo_type, material.repo_id, material.commit) is None:
            add(depth, material.ref, material.role, False, f"input {material.repo_type} "
                f"{material.repo_id}@{material.commit} does not exist on the hub", "unknown-input",
                f"{material.repo_id}@{material.commit}")
            return False
        return True

    def check_record(record: AttestationRecord, files: dict[str, str], what: str) -> dict | None:
        try:
            statement = open_envelope(record.envelope, hub_key, what=what)
        except SignatureError as exc:
            add(depth_now, what, record.kind, False, exc.message, exc.reason, exc.item)
            return None
        output = statement["predicate"]["buildDefinition"]["externalParameters"].get("output") or {}
        if output.get("repo") != record.repo_id or output.get("commit") != record.commit:
            add(depth_now, what, record.kind, False, f"the attestation is about {output.get('repo')}@"
                f"{str(output.get('commit'))[:12]}, not this version", "invalid", what)
            return None
        broken = _check_subjects(attested_files(statement), files)
        if broken:
            reason, path = broken
            add(depth_now, what, record.kind, False, f"{path} {'changed' if reason == 'changed' else 'is missing'} "
                f"since the hub attested it ({record.kind} at {record.commit[:12]})", reason, path)
            return None
        return statement

    depth_now = 0

    def visit(repo_type: str, repo_id: str, commit: str, depth: int, role: str) -> None:
        nonlocal depth_now
        key = (repo_type, repo_id, commit)
        subject = f"{repo_id}@{commit[:12]}"
        if key in visited:
            return
        visited.add(key)
        files = files_of(repo_type, repo_id, commit)
        if files is None:
            add(depth, subject, role, False, f"{role} {repo_type} {repo_id}@{commit} does not exist on the hub",
                "unknown-input", f"{repo_id}@{commit}")
            return
        order = {oid: i for i, oid in enumerate(history_of(repo_type, repo_id, commit))}
        records = sorted((r for r in attestations_of(repo_type, repo_id) if r.commit in order),
                         key=lambda r: order[r.commit])  # nearest ancestor first
        producers = [r for r in records if r.kind in ("import", "train", "optimize")]
        depth_now = depth
        if not producers:
            add(depth, subject, role, True, "on the hub; not made by this hub (uploaded, or imported by an fmhub that "
                "did not attest imports: no attestation)", "unattested")
        else:
            record = producers[0]
            statement = check_record(record, files, subject)
            if statement is not None and record.kind == "import":
                add(depth, subject, role, True, f"import attested by the hub at {record.commit[:12]} "
                    f"({len(attested_files(statement))} files unchanged) from {_source(statement)}")
            elif statement is not None:
                deps = [Material.from_json(d) for d in
                        statement["predicate"]["buildDefinition"].get("resolvedDependencies", [])]
                inputs = ", ".join(f"{m.role} {m.ref}" for m in deps) or "no inputs"
                add(depth, subject, role, True, f"{record.kind} attested by the hub at {record.commit[:12]} "
                    f"({len(attested_files(statement))} files unchanged) from {inputs}")
                if depth < max_depth:
                    for material in deps:
                        visit(material.repo_type, material.repo_id, material.commit, depth + 1, material.role)
        if repo_type != "model":
            return
        for path in sorted(p for p in files if p.startswith("eval/") and p.endswith("/report.json")):
            depth_now = depth + 1
            cards = [r for r in records if r.kind == "evaluate" and r.subject_path == path]
            if not cards:
                add(depth + 1, path, "evaluate", True, "report card not attested by this hub (self-reported)",
                    "unattested")
                continue
            statement = check_record(cards[0], files, path)
            if statement is None:
                continue
            deps = [Material.from_json(d) for d in
                    statement["predicate"]["buildDefinition"].get("resolvedDependencies", [])]
            if all(exists(m, depth + 2) for m in deps):
                add(depth + 1, path, "evaluate", True, "computed by the hub from " +
                    ", ".join(f"{m.role} {m.ref}" for m in deps))

    visit(repo_type, repo_id, commit, 0, "model" if repo_type == "model" else repo_type)
    return links
