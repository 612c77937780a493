"""REST handlers: decode, call the Manager, encode. No logic of their own."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response

from gfs.api import models as m
from gfs_mgmt.txn.engine import get_transaction
from gfs_mgmt.volume.service import Manager

#: stop / delete a volume that clients have mounted (else 409 volume_in_use)
ForceQuery = Annotated[
    bool, Query(description="even while mounted: the mounts then answer ESHUTDOWN")
]

ERRORS: dict[int | str, dict[str, object]] = {
    code: {"model": m.ErrorBody} for code in (400, 401, 404, 409, 422, 503)
}


def build(mgr: Manager) -> APIRouter:
    r = APIRouter(responses=ERRORS)

    @r.post("/peers", response_model=m.Peer, status_code=201, tags=["peers"])
    def peer_add(body: m.PeerAdd) -> m.Peer:
        return mgr.peer_add(body.address)

    @r.get("/peers", response_model=list[m.Peer], tags=["peers"])
    def peer_list() -> list[m.Peer]:
        return mgr.peers()

    @r.get("/peers/{peer}", response_model=m.Peer, tags=["peers"])
    def peer_get(peer: str) -> m.Peer:
        return mgr.peer(peer)

    @r.delete("/peers/{peer}", status_code=204, tags=["peers"])
    def peer_remove(peer: str) -> Response:
        mgr.peer_remove(peer)
        return Response(status_code=204)

    @r.post("/volumes", response_model=m.Volume, status_code=201, tags=["volumes"])
    def volume_create(body: m.VolumeCreate) -> m.Volume:
        return mgr.volume_create(body)

    @r.get("/volumes", response_model=list[m.Volume], tags=["volumes"])
    def volume_list() -> list[m.Volume]:
        return mgr.volumes()

    @r.get("/volumes/{name}", response_model=m.Volume, tags=["volumes"])
    def volume_get(name: str) -> m.Volume:
        return mgr.volume(name)

    @r.post("/volumes/{name}/start", response_model=m.Volume, tags=["volumes"])
    def volume_start(name: str) -> m.Volume:
        return mgr.volume_start(name)

    @r.post("/volumes/{name}/stop", response_model=m.Volume, tags=["volumes"])
    def volume_stop(name: str, force: ForceQuery = False) -> m.Volume:
        return mgr.volume_stop(name, force)

    @r.delete("/volumes/{name}", status_code=204, tags=["volumes"])
    def volume_delete(
        name: str,
        delete_data: Annotated[bool, Query(description="also delete brick data")] = False,
        force: ForceQuery = False,
    ) -> Response:
        mgr.volume_delete(name, delete_data, force)
        return Response(status_code=204)

    @r.get("/volumes/{name}/clients", response_model=list[m.ClientInfo], tags=["volumes"])
    def volume_clients(name: str) -> list[m.ClientInfo]:
        return mgr.volume_clients(name)

    @r.post(
        "/volumes/{name}/replica-sets/{index}/shrink",
        response_model=m.ReplicaSet,
        tags=["replication"],
    )
    def replica_shrink(name: str, index: int, body: m.ReplicaShrink) -> m.ReplicaSet:
        return mgr.membership.shrink(name, index, body)

    @r.post(
        "/volumes/{name}/replica-sets/{index}/rejoin",
        response_model=m.ReplicaSet,
        tags=["replication"],
    )
    def replica_rejoin(name: str, index: int, body: m.ReplicaRejoin) -> m.ReplicaSet:
        return mgr.membership.rejoin(name, index, body)

    @r.post(
        "/volumes/{name}/replica-sets/{index}/reconcile",
        response_model=m.ReplicaSet,
        tags=["replication"],
    )
    def replica_reconcile(name: str, index: int, body: m.ReplicaReconcile) -> m.ReplicaSet:
        return mgr.membership.reconcile(name, index, body)

    @r.get("/volumes/{name}/heal", response_model=m.HealInfo, tags=["replication"])
    def heal_info(name: str) -> m.HealInfo:
        return mgr.membership.heal_info(name)

    @r.post("/volumes/{name}/replace-brick", response_model=m.Volume, tags=["volumes"])
    def volume_replace_brick(name: str, body: m.ReplaceBrick) -> m.Volume:
        return mgr.volume_replace_brick(name, body.old, body.new)

    @r.post("/volumes/{name}/heal", response_model=m.HealInfo, tags=["replication"])
    def heal_start(name: str, body: m.HealStart) -> m.HealInfo:
        return mgr.membership.heal_start(name, body.full)

    @r.get("/volumes/{name}/status", response_model=m.VolumeStatus, tags=["volumes"])
    def volume_status(name: str) -> m.VolumeStatus:
        return mgr.volume_status(name)

    @r.get("/options", response_model=list[m.OptionInfo], tags=["options"])
    def option_table() -> list[m.OptionInfo]:
        return mgr.options_table()

    @r.get("/volumes/{name}/options", response_model=dict[str, str], tags=["options"])
    def volume_options(name: str) -> dict[str, str]:
        return mgr.volume_options(name)

    @r.post("/volumes/{name}/options", response_model=dict[str, str], tags=["options"])
    def volume_set(name: str, body: m.OptionsSet) -> dict[str, str]:
        return mgr.volume_set(name, body.options)

    @r.delete("/volumes/{name}/options/{key}", response_model=dict[str, str], tags=["options"])
    def volume_reset(name: str, key: str) -> dict[str, str]:
        return mgr.volume_reset(name, key)

    @r.post("/volumes/{name}/expand", response_model=m.Volume, tags=["volumes"])
    def volume_expand(name: str, body: m.Expand) -> m.Volume:
        return mgr.volume_expand(name, body.size)

    @r.get("/templates", response_model=list[m.Template], tags=["templates"])
    def template_list() -> list[m.Template]:
        return mgr.templates()

    @r.get("/templates/{name}", response_model=m.Template, tags=["templates"])
    def template_get(name: str) -> m.Template:
        return mgr.template(name)

    @r.get("/events", response_model=list[m.EventOut], tags=["events"])
    def events(
        volume: str | None = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    ) -> list[m.EventOut]:
        return mgr.events(volume, limit)

    @r.post("/webhooks", response_model=m.WebhookOut, status_code=201, tags=["events"])
    def webhook_add(body: m.WebhookAdd) -> m.WebhookOut:
        return mgr.webhook_add(body.url)

    @r.get("/webhooks", response_model=list[m.WebhookOut], tags=["events"])
    def webhook_list() -> list[m.WebhookOut]:
        return mgr.webhooks()

    @r.delete("/webhooks/{hook_id}", status_code=204, tags=["events"])
    def webhook_remove(hook_id: str) -> Response:
        mgr.webhook_remove(hook_id)
        return Response(status_code=204)

    @r.post(
        "/credentials", response_model=m.CredentialIssued, status_code=201, tags=["credentials"]
    )
    def credential_create(body: m.CredentialCreate) -> m.CredentialIssued:
        return mgr.credentials.create(body)

    @r.get("/credentials", response_model=list[m.Credential], tags=["credentials"])
    def credential_list(volume: str | None = None) -> list[m.Credential]:
        return mgr.credentials.list(volume)

    @r.get("/credentials/{name}", response_model=m.Credential, tags=["credentials"])
    def credential_get(name: str) -> m.Credential:
        return mgr.credentials.get(name)

    @r.delete("/credentials/{name}", response_model=m.Credential, tags=["credentials"])
    def credential_revoke(name: str) -> m.Credential:
        """Revoke: its token stops working at once, the bricks refuse its certificate."""
        return mgr.credentials.revoke(name)

    @r.get("/transactions/{txn_id}", response_model=m.Transaction, tags=["transactions"])
    def transaction(txn_id: str) -> m.Transaction:
        t = get_transaction(mgr.db, txn_id)
        return m.Transaction(
            id=t.id,
            kind=t.kind,
            volume=t.volume,
            state=t.state,
            steps=[s["kind"] for s in t.steps],
            done=t.done,
            error=t.error,
            created=t.created,
            updated=t.updated,
        )

    return r
