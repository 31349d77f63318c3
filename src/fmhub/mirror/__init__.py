"""Air-gapped mirroring: move repository versions between hubs by bundle file or over the network, verified and
incrementally, with their history and the records that travel with them (runs, report cards, lineage,
attestations).

A bundle is a tar whose first member is a manifest of every object by sha256, size and kind
(:mod:`fmhub.mirror._bundle`). :func:`plan_export` / :func:`write_bundle` write one from a store;
:func:`import_bundle` reads one as a stream, verifies every object, and applies it in one transaction.
:mod:`fmhub.mirror._remote` does the same across HTTP: from another fmhub (its export endpoint) or any server
speaking the Hugging Face Hub protocol, and towards another fmhub.

Example:
    >>> from fmhub.mirror import Target, plan_export, write_bundle, import_bundle
    >>> plan = plan_export(source, [Target("acme/tiny-bert")])
    >>> write_bundle(source, plan, Path("tiny-bert.fmbundle"))
    >>> with open("tiny-bert.fmbundle", "rb") as f:
    ...     summary = import_bundle(target, f)
"""

from fmhub.mirror._bundle import FORMAT, MANIFEST, VERSION, Entry, Manifest, read_manifest_file
from fmhub.mirror._export import ExportPlan, Target, hub_id, iter_bundle, parse_target, plan_export, write_bundle
from fmhub.mirror._import import ImportSummary, import_bundle
from fmhub.mirror._records import apply_records, collect_records

__all__ = ["FORMAT", "VERSION", "MANIFEST", "Entry", "Manifest", "read_manifest_file", "Target", "ExportPlan",
           "plan_export", "iter_bundle", "write_bundle", "hub_id", "parse_target", "ImportSummary", "import_bundle",
           "collect_records", "apply_records"]
