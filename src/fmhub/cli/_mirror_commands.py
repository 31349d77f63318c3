"""``fmhub mirror export|import|pull|push``: move repository versions between hubs, by bundle file or over HTTP."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from fmhub.cli._common import LateProgress, console, current_user, err_console, human_size, opened_store, trusted_files
from fmhub.errors import InvalidInputError
from fmhub.mirror import ImportSummary, Target, import_bundle, parse_target, plan_export, read_manifest_file, write_bundle
from fmhub.mirror._remote import pull, push

__all__ = ["register"]

mirror_app = typer.Typer(no_args_is_help=True, rich_markup_mode="rich",
                         help="Move repositories between hubs (air-gapped sites too): history, refs, cards, report "
                              "cards, runs, lineage and files, verified by sha256, incrementally.\n\n"
                              "export writes a bundle file, import reads one; pull and push do the same over HTTP.")

TargetsArgument = Annotated[list[str], typer.Argument(
    help="Repos to mirror: namespace/name[@revision] (a branch, tag or commit; none: every branch and tag). "
         "Prefix dataset/ for a dataset, e.g. dataset/acme/news@v1.", show_default=False)]
RepoTypeOption = Annotated[str, typer.Option("--repo-type", help="Kind of the repos named without a model/ or "
                                                                 "dataset/ prefix.")]
ForceOption = Annotated[bool, typer.Option("--force", help="Move refs even where this hub's branch is not an ancestor "
                                                           "of the incoming one (or a tag differs); without it such "
                                                           "refs are reported and left alone (exit code 1).")]
JsonOption = Annotated[bool, typer.Option("--json", help="Print the summary as one JSON object.")]
AllowPickleOption = Annotated[bool, typer.Option("--allow-pickle", help="Accept pickle-based files (found by content; "
                                                                        "reported as unsafe); refused otherwise, as "
                                                                        "on upload.")]
TokenOption = Annotated[str | None, typer.Option("--token", envvar="FMHUB_TOKEN", show_envvar=True,
                                                 help="Access token of the other hub (a write token for push).",
                                                 show_default=False)]


def register(app: typer.Typer) -> None:
    app.add_typer(mirror_app, name="mirror")


def _targets(texts: list[str], repo_type: str) -> list[Target]:
    if repo_type not in ("model", "dataset"):
        raise InvalidInputError(f"--repo-type {repo_type!r}", hint="model or dataset")
    targets = []
    for text in texts:
        kind = repo_type
        for prefix in ("model/", "dataset/", "models/", "datasets/"):
            if text.startswith(prefix) and text.split("@", 1)[0].count("/") == 2:
                kind, text = prefix.rstrip("s/"), text[len(prefix):]
                break
        targets.append(parse_target(text, kind))
    return targets


def _print_import(summary: ImportSummary, *, as_json: bool) -> int:
    if as_json:
        console.print_json(json.dumps(summary.to_json()))
        return 1 if summary.conflicts else 0
    console.print(f"received: {summary.blobs_written} file(s) stored ({human_size(summary.bytes_written)}), "
                  f"{summary.blobs_present} skipped as already present ({human_size(summary.bytes_present)}), "
                  f"{summary.objects_not_sent} object(s) not sent (this hub had them)", highlight=False)
    records = ", ".join(f"{count} {kind}" for kind, count in summary.records_added.items())
    console.print(f"imported: {summary.commits_added} commit(s) into {len(summary.repos)} repo(s); records: {records}"
                  + (f"; {summary.signatures_verified} signature(s) verified" if summary.signatures_verified else ""),
                  highlight=False)
    for ref in summary.refs:
        if ref.outcome == "conflict":
            err_console.print(f"[bold yellow]conflict:[/] {escape(ref.repo)} {ref.kind} {escape(ref.name)} left at "
                              f"{(ref.old or '')[:12]}: {escape(ref.detail)}", highlight=False)
        elif ref.outcome != "unchanged":
            console.print(f"  {escape(ref.repo)} {ref.kind} {escape(ref.name)}: {ref.outcome} → {ref.new[:12]}",
                          highlight=False)
    if summary.conflicts:
        err_console.print("[bold]hint:[/] rerun with --force to move them (history on this hub is kept, "
                          "unreferenced)", highlight=False)
        return 1
    return 0


@mirror_app.command("export")
def export_command(
    targets: TargetsArgument,
    to: Annotated[Path, typer.Option("--to", help="The bundle file to write (written beside, renamed when complete).",
                                     show_default=False)],
    since: Annotated[Path | None, typer.Option(
        "--since", help="A previous bundle (or its manifest.json, or a manifest the other hub exported): objects it "
                        "lists are left out, so only what the other side lacks is written.", show_default=False)] = None,
    repo_type: RepoTypeOption = "model",
) -> None:
    """Write repo versions (history, refs, files and their records) to one bundle file, streamed."""
    previous = read_manifest_file(since) if since is not None else None
    with opened_store() as store:
        plan = plan_export(store, _targets(targets, repo_type), since=previous)
        with LateProgress("export") as bar:
            bar.start(plan.blob_bytes + plan.record_bytes)
            size = write_bundle(store, plan, to, progress=bar.advance)
    sent = [e for e in plan.manifest.objects if e.in_bundle]
    console.print(f"wrote {to} ({human_size(size)}): sent {len(sent)} object(s) ({human_size(sum(e.size for e in sent))}), "
                  f"skipped {len(plan.skipped)} already on the other side "
                  f"({human_size(sum(e.size for e in plan.skipped))})", highlight=False)


@mirror_app.command("manifest")
def manifest_command(
    targets: TargetsArgument,
    to: Annotated[Path, typer.Option("--to", help="The manifest file to write (JSON).", show_default=False)],
    repo_type: RepoTypeOption = "model",
) -> None:
    """Write the manifest of what this hub holds of these repos, for the other side's export --since."""
    with opened_store() as store:
        plan = plan_export(store, _targets(targets, repo_type))
    try:
        to.write_bytes(plan.manifest.to_bytes())
    except OSError as exc:
        raise InvalidInputError(f"cannot write --to {to}: {exc.strerror}") from None
    console.print(f"wrote {to}: {len(plan.manifest.objects)} object(s) of {len(plan.manifest.repos)} repo(s); "
                  "give it to the exporting side as --since", highlight=False)


@mirror_app.command("import")
def import_command(
    bundle: Annotated[Path, typer.Argument(help="A bundle file made by fmhub mirror export.", show_default=False)],
    verify_signatures: Annotated[bool, typer.Option(
        "--verify-signatures", help="Refuse the bundle unless each incoming ref's version carries model.sig by a "
                                    "--trust key over exactly its files.")] = False,
    trust: Annotated[list[Path] | None, typer.Option("--trust", help="A trusted public key (.pub); repeatable.",
                                                     show_default=False)] = None,
    force: ForceOption = False,
    allow_pickle: AllowPickleOption = False,
    as_json: JsonOption = False,
) -> None:
    """Import a bundle: every object verified against the manifest, then applied in one transaction."""
    if verify_signatures and not trust:
        raise InvalidInputError("--verify-signatures needs the keys to trust", hint="add --trust KEY.pub")
    if trust and not verify_signatures:
        raise InvalidInputError("--trust is used with --verify-signatures", hint="add --verify-signatures")
    keys = trusted_files(trust) if verify_signatures else None
    try:
        source = open(bundle, "rb")  # noqa: SIM115 - closed below
    except OSError as exc:
        raise InvalidInputError(f"cannot read {bundle}: {exc.strerror}", hint="give a bundle file") from None
    with source, opened_store() as store, LateProgress("import") as bar:
        total, counted = bundle.stat().st_size, 0

        def advance(n: int) -> None:
            nonlocal counted
            counted += n
            bar.advance(n)

        bar.start(total)
        summary = import_bundle(store, source, force=force, allow_pickle=allow_pickle, trust=keys,
                                progress=advance, actor=current_user())
        bar.advance(max(0, total - counted))  # tar headers and padding: the whole file was read
    raise typer.Exit(_print_import(summary, as_json=as_json))


@mirror_app.command("pull")
def pull_command(
    targets: TargetsArgument,
    source: Annotated[str, typer.Option("--from", help="URL of the other hub: an fmhub server (history and records "
                                                       "come too) or any Hugging Face Hub protocol server.",
                                        show_default=False)],
    token: TokenOption = None,
    protocol: Annotated[str, typer.Option("--protocol", help="auto: fmhub's bundles when the server has them, else "
                                                             "the Hugging Face protocol (files only); or fmhub | hf.")]
    = "auto",
    allow_pickle: AllowPickleOption = False,
    force: ForceOption = False,
    repo_type: RepoTypeOption = "model",
    as_json: JsonOption = False,
) -> None:
    """Fetch repo versions from another hub: only the files this hub lacks; rerun to resume."""
    with opened_store() as store, LateProgress("pull") as bar:
        summary = pull(store, source, _targets(targets, repo_type), token=token, force=force, protocol=protocol,
                       allow_pickle=allow_pickle, progress=bar.advance, on_total=bar.start, actor=current_user())
    if summary.imported is not None:
        raise typer.Exit(_print_import(summary.imported, as_json=as_json))
    if as_json:
        console.print_json(json.dumps({"protocol": summary.protocol, "files_fetched": summary.files_fetched,
                                       "bytes_fetched": summary.bytes_fetched, "files_present": summary.files_present,
                                       "bytes_present": summary.bytes_present, "commits": summary.commits}))
        return
    console.print(f"pulled over the Hugging Face protocol: {summary.files_fetched} file(s) fetched "
                  f"({human_size(summary.bytes_fetched)}), {summary.files_present} skipped as already present "
                  f"({human_size(summary.bytes_present)}); commits {', '.join(c[:12] for c in summary.commits)}",
                  highlight=False)


@mirror_app.command("push")
def push_command(
    targets: TargetsArgument,
    destination: Annotated[str, typer.Option("--to", help="URL of the fmhub server to send to.", show_default=False)],
    token: TokenOption = None,
    force: ForceOption = False,
    repo_type: RepoTypeOption = "model",
    as_json: JsonOption = False,
) -> None:
    """Send repo versions to another fmhub: only the objects it lacks, imported there atomically."""
    with opened_store() as store, LateProgress("push") as bar:
        summary = push(store, destination, _targets(targets, repo_type), token=token, force=force,
                       progress=bar.advance, on_total=bar.start)
    if as_json:
        console.print_json(json.dumps({"objects_sent": summary.objects_sent, "bytes_sent": summary.bytes_sent,
                                       "objects_skipped": summary.objects_skipped,
                                       "bytes_skipped": summary.bytes_skipped, "imported": summary.answer}))
    else:
        console.print(f"sent {summary.objects_sent} object(s) ({human_size(summary.bytes_sent)}), skipped "
                      f"{summary.objects_skipped} already on {destination} ({human_size(summary.bytes_skipped)})",
                      highlight=False)
    conflicts = [r for r in summary.answer.get("refs", []) if r.get("outcome") == "conflict"]
    for ref in conflicts:
        err_console.print(f"[bold yellow]conflict:[/] {escape(ref['repo'])} {ref['kind']} {escape(ref['name'])}: "
                          f"{escape(ref.get('detail') or '')}", highlight=False)
    if conflicts:
        raise typer.Exit(1)
