"""A typed client of gfsd's REST API (httpx). Every failure becomes ApiError with
a one-line message: HTTP errors carry gfsd's {code, message}; transport
failures get code "unreachable"."""

from __future__ import annotations

from typing import Any, TypeVar

import httpx
from opentelemetry.trace import SpanKind
from pydantic import BaseModel, TypeAdapter, ValidationError

from gfs import tracing
from gfs.api import models as m

T = TypeVar("T")
DEFAULT_TIMEOUT = 60.0


class ApiError(Exception):
    def __init__(self, code: str, message: str, status: int = 0) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status


class Client:
    def __init__(self, server: str, token: str | None, timeout: float = DEFAULT_TIMEOUT) -> None:
        base = server if "://" in server else f"http://{server}"
        if token and not (token.isascii() and token.isprintable()):
            # HTTP headers carry ASCII only; httpx would fail with an encoding error.
            raise ApiError("bad_token", "the token has characters a bearer token cannot have")
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.base = base.rstrip("/")
        self.http = httpx.Client(base_url=self.base, headers=headers, timeout=timeout)

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _request(
        self,
        method: str,
        path: str,
        body: BaseModel | None = None,
        params: dict[str, Any] | None = None,
    ) -> Any:
        with tracing.span(f"{method} {path}", SpanKind.CLIENT, attrs={"http.method": method}) as sp:
            try:
                r = self.http.request(
                    method,
                    path,
                    params=params,
                    json=body.model_dump(mode="json", exclude_none=True) if body else None,
                    headers=tracing.inject({}) if sp is not None else None,
                )
            except httpx.HTTPError as e:
                raise ApiError("unreachable", f"cannot reach gfsd at {self.base}: {e}") from e
            if sp is not None:
                sp.set_attribute("http.response.status_code", r.status_code)
        if r.status_code >= 400:
            try:
                err = m.ErrorBody.model_validate(r.json())
            except (ValueError, ValidationError):
                raise ApiError(
                    "http_error", f"gfsd answered HTTP {r.status_code}", r.status_code
                ) from None
            raise ApiError(err.code, err.message, r.status_code)
        try:
            return r.json() if r.content else None
        except ValueError:
            raise ApiError(
                "bad_reply", f"{self.base} answered HTTP {r.status_code} without JSON: is it gfsd?"
            ) from None

    def _get(
        self,
        kind: type[T],
        method: str,
        path: str,
        body: BaseModel | None = None,
        params: dict[str, Any] | None = None,
    ) -> T:
        data = self._request(method, path, body, params)
        try:
            return TypeAdapter(kind).validate_python(data)
        except ValidationError as e:
            raise ApiError("bad_reply", f"unexpected reply from gfsd: {e}") from e

    # -- endpoints -------------------------------------------------------------------------

    def health(self) -> m.Health:
        return self._get(m.Health, "GET", "/v1/health")

    def peer_add(self, address: str) -> m.Peer:
        return self._get(m.Peer, "POST", "/v1/peers", m.PeerAdd(address=address))

    def peers(self) -> list[m.Peer]:
        return self._get(list[m.Peer], "GET", "/v1/peers")

    def peer(self, peer: str) -> m.Peer:
        return self._get(m.Peer, "GET", f"/v1/peers/{peer}")

    def peer_remove(self, peer: str) -> None:
        self._request("DELETE", f"/v1/peers/{peer}")

    def volume_create(self, spec: m.VolumeCreate) -> m.Volume:
        return self._get(m.Volume, "POST", "/v1/volumes", spec)

    def volumes(self) -> list[m.Volume]:
        return self._get(list[m.Volume], "GET", "/v1/volumes")

    def volume(self, name: str) -> m.Volume:
        return self._get(m.Volume, "GET", f"/v1/volumes/{name}")

    def volume_start(self, name: str) -> m.Volume:
        return self._get(m.Volume, "POST", f"/v1/volumes/{name}/start")

    def volume_stop(self, name: str, force: bool = False) -> m.Volume:
        params = {"force": "true"} if force else None
        return self._get(m.Volume, "POST", f"/v1/volumes/{name}/stop", params=params)

    def volume_delete(self, name: str, delete_data: bool, force: bool = False) -> None:
        params = {"delete_data": "true" if delete_data else "false"}
        if force:
            params["force"] = "true"
        self._request("DELETE", f"/v1/volumes/{name}", params=params)

    def volume_clients(self, name: str) -> list[m.ClientInfo]:
        return self._get(list[m.ClientInfo], "GET", f"/v1/volumes/{name}/clients")

    def volume_status(self, name: str) -> m.VolumeStatus:
        return self._get(m.VolumeStatus, "GET", f"/v1/volumes/{name}/status")

    def transaction(self, txn_id: str) -> m.Transaction:
        return self._get(m.Transaction, "GET", f"/v1/transactions/{txn_id}")

    def options_table(self) -> list[m.OptionInfo]:
        return self._get(list[m.OptionInfo], "GET", "/v1/options")

    def volume_options(self, name: str) -> dict[str, str]:
        return self._get(dict[str, str], "GET", f"/v1/volumes/{name}/options")

    def volume_set(self, name: str, options: dict[str, str]) -> dict[str, str]:
        return self._get(
            dict[str, str], "POST", f"/v1/volumes/{name}/options", m.OptionsSet(options=options)
        )

    def volume_reset(self, name: str, key: str) -> dict[str, str]:
        return self._get(dict[str, str], "DELETE", f"/v1/volumes/{name}/options/{key}")

    def volume_expand(self, name: str, size: str) -> m.Volume:
        return self._get(m.Volume, "POST", f"/v1/volumes/{name}/expand", m.Expand(size=size))

    def templates(self) -> list[m.Template]:
        return self._get(list[m.Template], "GET", "/v1/templates")

    def template(self, name: str) -> m.Template:
        return self._get(m.Template, "GET", f"/v1/templates/{name}")

    # -- replication (called by brick daemons and mount clients) -----------------------------

    def _rs(self, name: str, index: int, what: str, body: BaseModel) -> m.ReplicaSet:
        return self._get(
            m.ReplicaSet, "POST", f"/v1/volumes/{name}/replica-sets/{index}/{what}", body
        )

    def replica_shrink(
        self, name: str, index: int, epoch: int, bricks: list[str], reporter: str
    ) -> m.ReplicaSet:
        body = m.ReplicaShrink(epoch=epoch, bricks=bricks, reporter=reporter)
        return self._rs(name, index, "shrink", body)

    def replica_rejoin(
        self, name: str, index: int, epoch: int, brick: str, reporter: str
    ) -> m.ReplicaSet:
        body = m.ReplicaRejoin(epoch=epoch, brick=brick, reporter=reporter)
        return self._rs(name, index, "rejoin", body)

    def replica_reconcile(self, name: str, index: int, epoch: int) -> m.ReplicaSet:
        return self._rs(name, index, "reconcile", m.ReplicaReconcile(epoch=epoch))

    def heal_info(self, name: str) -> m.HealInfo:
        return self._get(m.HealInfo, "GET", f"/v1/volumes/{name}/heal")

    def heal_start(self, name: str, full: bool) -> m.HealInfo:
        return self._get(m.HealInfo, "POST", f"/v1/volumes/{name}/heal", m.HealStart(full=full))

    def volume_replace_brick(self, name: str, old: str, new: str) -> m.Volume:
        body = m.ReplaceBrick(old=old, new=new)
        return self._get(m.Volume, "POST", f"/v1/volumes/{name}/replace-brick", body)

    def credential_create(self, name: str, volumes: list[str]) -> m.CredentialIssued:
        body = m.CredentialCreate(name=name, volumes=volumes)
        return self._get(m.CredentialIssued, "POST", "/v1/credentials", body)

    def credentials(self, volume: str | None = None) -> list[m.Credential]:
        params = {"volume": volume} if volume else None
        return self._get(list[m.Credential], "GET", "/v1/credentials", params=params)

    def credential_revoke(self, name: str) -> m.Credential:
        return self._get(m.Credential, "DELETE", f"/v1/credentials/{name}")
