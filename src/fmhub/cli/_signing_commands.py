"""``fmhub keys|sign|verify``: signed model versions (OpenSSF model-signing format, key-based).

``fmhub keys create`` makes a key pair on this machine (the private key never leaves it); ``fmhub keys add``
gives the public key to an organization on the hub, whose admins can ``revoke`` it. ``fmhub sign`` commits
``model.sig`` beside a version's files; ``fmhub verify`` checks it against the files of a commit, and shows the
hub's attestations of how the version was made, back to its data.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from fmhub.cli._common import EndpointOption, TokenOption, console, err_console, opened_hub, trusted_files
from fmhub.errors import InvalidInputError
from fmhub.refs import split_ref

keys_app = typer.Typer(help="Signing keys: create a key pair here; trust, list and revoke public keys of an "
                            "organization on the hub; signature policies on its refs.", no_args_is_help=True)
policy_app = typer.Typer(help="Refs (e.g. prod) of a namespace's model repos that only move to signed commits.",
                         no_args_is_help=True)

NamespaceArgument = Annotated[str, typer.Argument(help="Organization (or user) name, e.g. acme.", show_default=False)]
VersionArgument = Annotated[str, typer.Argument(
    help="Model version: REPO[@REVISION], e.g. acme/bert@main (default: the default branch).", show_default=False,
    metavar="REPO[@REV]")]
TrustOption = Annotated[list[Path] | None, typer.Option(
    "--trust", help="A public key file (.pub) to trust besides the keys the hub lists for the repo's "
                    "namespace (repeatable). A key the hub lists as revoked stays revoked.", show_default=False)]
PasswordEnvOption = Annotated[str | None, typer.Option(
    "--password-env", help="Name of an environment variable holding the private key's password (never pass "
                           "the password itself on the command line).", show_default=False)]


def register(app: typer.Typer) -> None:
    app.add_typer(keys_app, name="keys")
    keys_app.add_typer(policy_app, name="policy")
    app.command("sign")(sign_command)
    app.command("verify")(verify_command)


def _password(env: str | None) -> str | None:
    if env is None:
        return None
    value = os.environ.get(env)
    if value is None:
        raise InvalidInputError(f"--password-env {env}: the variable is not set", hint=f"export {env}=...")
    return value


# -- keys ------------------------------------------------------------------------------------------


@keys_app.command("create")
def keys_create(
    path: Annotated[Path, typer.Argument(help="Where to write the private key, e.g. release.key; the public key "
                                              "goes beside it as release.pub.", show_default=False)],
    password_env: PasswordEnvOption = None,
    force: Annotated[bool, typer.Option("--force", help="Replace existing key files.")] = False,
) -> None:
    """Create an EC P-256 key pair: the private key (mode 0600, stays here) and the public key (.pub, to share).

    Give the .pub to your organization with `fmhub keys add ORG KEY.pub`; sign with `fmhub sign REPO --key KEY`.
    """
    if path.suffix == ".pub":
        raise InvalidInputError(f"{path} ends in .pub", hint="name the private key, e.g. release.key")
    from fmhub.signing import create_key_pair

    pair = create_key_pair(path, password=_password(password_env), overwrite=force)
    err_console.print(f"private key {pair.private_path} (mode 0600; never share it)", highlight=False)
    err_console.print(f"public key  {pair.public_path}", highlight=False)
    console.print(pair.fingerprint, highlight=False)


@keys_app.command("add")
def keys_add(
    namespace: NamespaceArgument,
    public_key: Annotated[Path, typer.Argument(help="The public key file (.pub) to trust.", show_default=False)],
    name: Annotated[str | None, typer.Option("--name", help="A label for the key (default: the file's name).")
                    ] = None,
    endpoint: EndpointOption = None,
    token: TokenOption = None,
) -> None:
    """Trust a public key to sign the namespace's model versions (organization admins)."""
    (key,) = trusted_files([public_key])
    with opened_hub(endpoint, token) as hub:
        added = hub.add_signing_key(namespace, key.public_pem, name=name or public_key.stem)
    console.print(f"{namespace} trusts key [bold]{escape(added.name)}[/] {added.fingerprint}", highlight=False)


@keys_app.command("list")
def keys_list(
    namespace: NamespaceArgument,
    endpoint: EndpointOption = None,
    token: TokenOption = None,
) -> None:
    """The public keys a namespace trusts, revoked ones marked."""
    with opened_hub(endpoint, token) as hub:
        keys = hub.list_signing_keys(namespace)
    if not keys:
        err_console.print(f"{namespace} trusts no signing key yet (add one: fmhub keys add {namespace} KEY.pub)")
        return
    table = Table("name", "fingerprint", "added", "status")
    for key in keys:
        added = f"{key.created_at:%Y-%m-%d %H:%M}" if key.created_at else "—"
        status = (f"[red]revoked {key.revoked_at:%Y-%m-%d %H:%M}[/]" if key.revoked_at else "[green]trusted[/]")
        table.add_row(escape(key.name), key.fingerprint, added, status)
    console.print(table)


@keys_app.command("revoke")
def keys_revoke(
    namespace: NamespaceArgument,
    fingerprint: Annotated[str, typer.Argument(help="The key's fingerprint, or a unique prefix of ≥ 8 hex digits.",
                                               show_default=False)],
    endpoint: EndpointOption = None,
    token: TokenOption = None,
) -> None:
    """Revoke a key: versions signed by it fail verification from now on (organization admins)."""
    with opened_hub(endpoint, token) as hub:
        key = hub.revoke_signing_key(namespace, fingerprint)
    console.print(f"revoked key {escape(key.name)} {key.fingerprint} of {namespace}", highlight=False)


@policy_app.command("add")
def policy_add(
    namespace: NamespaceArgument,
    ref_pattern: Annotated[str, typer.Argument(help="Branch or tag name, globs allowed: prod, release-*.",
                                               show_default=False)],
    endpoint: EndpointOption = None,
    token: TokenOption = None,
) -> None:
    """Require a valid signature (by one of the namespace's trusted keys) before a matching ref of any of its
    model repos is created or moved."""
    with opened_hub(endpoint, token) as hub:
        policy = hub.add_signing_policy(namespace, ref_pattern)
    console.print(f"{namespace}: refs matching {escape(policy.ref_pattern)} only move to signed commits")


@policy_app.command("list")
def policy_list(namespace: NamespaceArgument, endpoint: EndpointOption = None, token: TokenOption = None) -> None:
    """A namespace's signature policies."""
    with opened_hub(endpoint, token) as hub:
        policies = hub.list_signing_policies(namespace)
    for policy in policies:
        console.print(policy.ref_pattern, highlight=False)
    if not policies:
        err_console.print(f"{namespace} has no signature policy")


@policy_app.command("remove")
def policy_remove(namespace: NamespaceArgument, ref_pattern: Annotated[str, typer.Argument(show_default=False)],
                  endpoint: EndpointOption = None, token: TokenOption = None) -> None:
    """Drop a signature policy."""
    with opened_hub(endpoint, token) as hub:
        hub.remove_signing_policy(namespace, ref_pattern)
    console.print(f"{namespace}: {escape(ref_pattern)} no longer needs a signature")


# -- sign / verify ---------------------------------------------------------------------------------


def sign_command(
    version: VersionArgument,
    key: Annotated[Path, typer.Option("--key", help="Your private key file (fmhub keys create).",
                                      show_default=False)],
    password_env: PasswordEnvOption = None,
    endpoint: EndpointOption = None,
    token: TokenOption = None,
) -> None:
    """Sign every file of a version and commit the signature beside them as model.sig (OpenSSF model-signing).

    REV must be a branch (or the commit at a branch's head): the signature is committed on that branch. The
    files are fetched and checked against the commit first, so what is signed is what the hub holds.
    """
    repo, revision = split_ref(version, "REPO[@REV]")
    with opened_hub(endpoint, token) as hub:
        commit = hub.sign(repo, key, revision=revision, password=_password(password_env))
    console.print(f"signed {repo}: model.sig committed as {commit.oid[:12]}", highlight=False)


def verify_command(
    version: VersionArgument,
    trust: TrustOption = None,
    hub_key: Annotated[Path | None, typer.Option(
        "--hub-key", help="The hub's attestation public key, pinned (default: the key the hub reports).",
        show_default=False)] = None,
    provenance: Annotated[bool, typer.Option(
        "--provenance/--no-provenance", help="Also check the hub's attestations: how the version was made, back to "
                                             "its data, and its report cards.")] = True,
    endpoint: EndpointOption = None,
    token: TokenOption = None,
) -> None:
    """Verify a version's model.sig against the files of that commit, by a trusted key that is not revoked; then
    show the chain from the version back to its data, each link checked.

    Exit code 0: the signature and every link hold. Exit code 2: missing or invalid signature, untrusted or
    revoked key, a file changed, added, removed or renamed since signing, or a broken link (an attested file
    changed since, an input that does not exist); the message names it.
    """
    repo, revision = split_ref(version, "REPO[@REV]")
    keys = trusted_files(trust)
    pinned = trusted_files([hub_key])[0] if hub_key else None
    with opened_hub(endpoint, token) as hub:
        verified = hub.verify(repo, revision, trust=keys)
        links = hub.provenance(repo, verified.commit, hub_key=pinned) if provenance else []
    signed = verified.signature
    console.print(f"[green]✓[/] {repo}@{verified.commit[:12]}: {len(signed.files)} files signed by key "
                  f"{escape(signed.key.label)}", highlight=False)
    for link in links:
        mark = "[green]✓[/]" if link.ok and link.reason != "unattested" else ("[yellow]·[/]" if link.ok else
                                                                             "[red]✗[/]")
        console.print(f"{'  ' * (link.depth + 1)}{mark} {escape(link.subject)} [dim]({link.role})[/]: "
                      f"{escape(link.detail)}", highlight=False)
    from fmhub.signing import first_failure

    failure = first_failure(links)
    if failure is not None:
        raise failure
