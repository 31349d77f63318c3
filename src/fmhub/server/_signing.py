"""fmhub's native API for signed versions: the public keys a namespace trusts, its signature policies, the hub's
own attestation key and the attestations it signed.

Keys are public: anyone may list them (a verifier needs them, offline or not). Adding and revoking keys and
policies takes an admin of the namespace (an org admin, or the user for their own namespace) with a write
token. The hub never receives a private key.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from fmhub.accounts import Principal
from fmhub.constants import settings
from fmhub.errors import InvalidInputError, PermissionDeniedError
from fmhub.server._auth import ReaderDep, StoreDep, WriterDep, require_write_token, visible_repo, writable_repo
from fmhub.signing import Attestor, TrustedKeys, check_namespace, hub_public_key
from fmhub.store import Store

__all__ = ["router", "attestor"]

router = APIRouter(prefix="/api/fmhub", tags=["fmhub"])


def _namespace_admin(request: Request, caller: Principal, namespace: str, what: str) -> str:
    namespace = check_namespace(namespace)
    accounts = request.app.state.accounts
    accounts.get(namespace)  # a missing org or user is reported as such
    require_write_token(caller, what)
    if not (caller.is_admin or caller.namespace_role(namespace) == "admin"):
        raise PermissionDeniedError(f"{what} needs an admin of {namespace!r}",
                                    hint=f"ask an admin of {namespace!r} (or a site administrator)")
    return namespace


class _NewKey(BaseModel):
    model_config = ConfigDict(extra="forbid")
    public_key: str = Field(min_length=1, max_length=10_000)
    name: str | None = Field(default=None, max_length=96)


class _NewPolicy(BaseModel):
    model_config = ConfigDict(extra="forbid")
    ref_pattern: str = Field(min_length=1, max_length=255)


@router.get("/namespaces/{namespace}/keys", summary="The public keys a namespace trusts to sign its versions")
def list_keys(store: StoreDep, caller: ReaderDep, namespace: str) -> list[dict[str, Any]]:
    return [key.to_json() for key in TrustedKeys(store.db).list(check_namespace(namespace))]


@router.post("/namespaces/{namespace}/keys", status_code=201, summary="Trust a public key (namespace admins)")
def add_key(request: Request, store: StoreDep, caller: WriterDep, namespace: str, body: _NewKey) -> dict[str, Any]:
    namespace = _namespace_admin(request, caller, namespace, "adding a signing key")
    return TrustedKeys(store.db).add(namespace, body.public_key, name=body.name, actor=caller.user).to_json()


@router.delete("/namespaces/{namespace}/keys/{fingerprint}", summary="Revoke a key (namespace admins)")
def revoke_key(request: Request, store: StoreDep, caller: WriterDep, namespace: str,
               fingerprint: str) -> dict[str, Any]:
    namespace = _namespace_admin(request, caller, namespace, "revoking a signing key")
    return TrustedKeys(store.db).revoke(namespace, fingerprint, actor=caller.user).to_json()


@router.get("/namespaces/{namespace}/signing-policies", summary="Refs of the namespace that need a signature")
def list_policies(store: StoreDep, caller: ReaderDep, namespace: str) -> list[dict[str, Any]]:
    return [p.to_json() for p in TrustedKeys(store.db).policies(check_namespace(namespace))]


@router.post("/namespaces/{namespace}/signing-policies", status_code=201,
             summary="Require a signature before matching refs move (namespace admins)")
def add_policy(request: Request, store: StoreDep, caller: WriterDep, namespace: str,
               body: _NewPolicy) -> dict[str, Any]:
    namespace = _namespace_admin(request, caller, namespace, "adding a signature policy")
    return TrustedKeys(store.db).add_policy(namespace, body.ref_pattern, actor=caller.user).to_json()


@router.delete("/namespaces/{namespace}/signing-policies", summary="Drop a signature policy (namespace admins)")
def remove_policy(request: Request, store: StoreDep, caller: WriterDep, namespace: str,
                  ref: str = Query(min_length=1, max_length=255)) -> dict[str, Any]:
    namespace = _namespace_admin(request, caller, namespace, "removing a signature policy")
    TrustedKeys(store.db).remove_policy(namespace, ref)
    return {"removed": ref, "namespace": namespace}


# -- hub attestations ------------------------------------------------------------------------------


def attestor(store: Store) -> Attestor:
    """The hub's attestor: its store, and its own key (``FMHUB_SIGNING_KEY``, created on first use)."""
    return Attestor(store, settings().signing_key)


@router.get("/signing/hub-key", summary="The public key this hub signs its attestations with")
def hub_key(caller: ReaderDep) -> dict[str, Any]:
    key = hub_public_key(settings().signing_key)
    return {"public_key": key.public_pem, "fingerprint": key.fingerprint}


@router.get("/attestations", summary="The hub's attestations about a repo the caller may see")
def list_attestations(store: StoreDep, caller: ReaderDep, repo: str = Query(min_length=3, max_length=200),
                      repo_type: str = Query("model", pattern="^(model|dataset)$")) -> list[dict[str, Any]]:
    found = visible_repo(store, caller, repo_type, repo)
    return [r.to_json() for r in attestor(store).list(found.repo_id, repo_type=found.repo_type)]


class _Attest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    repo: str = Field(min_length=3, max_length=200)
    commit: str = Field(pattern=r"^[0-9a-f]{40}$")
    kind: str = Field(pattern="^(optimize|import)$")
    repo_type: str = Field("model", pattern="^(model|dataset)$")


@router.post("/attestations", status_code=201,
             summary="Have the hub attest an optimized variant (kind optimize) or a data import (kind import) it holds")
def attest(store: StoreDep, caller: WriterDep, body: _Attest) -> dict[str, Any]:
    repo_type = "dataset" if body.kind == "import" else "model"
    if body.repo_type != repo_type:
        raise InvalidInputError(f"an {body.kind} attestation is about a {repo_type} repo, not a {body.repo_type}",
                                hint=f"send repo_type {repo_type}")
    repo = writable_repo(store, caller, repo_type, body.repo)
    commit = store.get_commit(repo.repo_id, body.commit, repo_type=repo_type).oid
    if body.kind == "import":
        return attestor(store).attest_import(repo.repo_id, commit).to_json()
    return attestor(store).attest_variant(repo.repo_id, commit).to_json()
