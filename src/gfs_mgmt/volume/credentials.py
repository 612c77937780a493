"""Per-volume client credentials: gfsd signs a client certificate naming some volumes
(with the cluster CA given by `--ca-dir`) and makes a bearer token that may only read
those volumes' layout. Only hashes and fingerprints are stored: the key and the token
are returned once. Revoking one pushes the cluster's revocation list to every brick
daemon; the peer monitor pushes it again to a daemon whose list differs (one that was
down, or lost its file)."""

from __future__ import annotations

import hashlib
import logging
import secrets
import tempfile
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography import x509
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from gfs import certs
from gfs.api import models as m
from gfs.errors import GfsError
from gfs_mgmt.peer.brickd import BrickdAdmin, PeerError
from gfs_mgmt.store.db import Database
from gfs_mgmt.store.models import Credential, Event, Peer, Volume, new_id, now
from gfs_mgmt.txn.engine import Engine, Registry, Result, Step

log = logging.getLogger(__name__)

#: A push to a brick daemon that is down must not hold the revoke up for long: the
#: monitor sends the list again when the daemon is back.
PUSH_TIMEOUT = 5.0


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def revoked_fingerprints(db: Database) -> list[str]:
    """The fingerprints every brick daemon must refuse (expired ones need no entry)."""
    with db.session() as s:
        rows = s.scalars(
            select(Credential.fingerprint).where(
                Credential.revoked.is_not(None), Credential.not_after > now()
            )
        )
        return sorted(rows)


def push_revocations(db: Database, addresses: list[str] | None = None) -> dict[str, str]:
    """Send the revocation list to these brick daemons (default: every online peer);
    returns {address: error} for those that did not take it."""
    fps = revoked_fingerprints(db)
    if addresses is None:
        with db.session() as s:
            addresses = [p.address for p in s.scalars(select(Peer).where(Peer.online))]

    def push(address: str) -> str:
        try:
            with BrickdAdmin(address, timeout=PUSH_TIMEOUT) as a:
                a.revoke(fps)
            return ""
        except PeerError as e:
            return str(e)

    if not addresses:
        return {}
    with ThreadPoolExecutor(min(16, len(addresses))) as pool:
        answers = dict(zip(addresses, pool.map(push, addresses), strict=True))
    failed = {a: e for a, e in answers.items() if e}
    for address, err in failed.items():
        log.warning(
            "revocations not pushed address=%s error=%s (the monitor retries)", address, err
        )
    return failed


def _wire(c: Credential) -> m.Credential:
    return m.Credential(
        name=c.name,
        volumes=list(c.volumes),
        fingerprint=c.fingerprint,
        serial=c.serial,
        created=c.created,
        not_after=c.not_after,
        revoked=c.revoked,
    )


class Credentials:
    def __init__(self, db: Database, registry: Registry) -> None:
        self.db = db
        #: the cluster CA (ca.crt, ca.key) that signs client certificates; gfsd --ca-dir
        self.ca_dir: Path | None = None
        self.engine: Engine | None = None
        registry.register("db_credential", self._db_credential, self._db_credential_undo)
        registry.register("db_credential_revoke", self._db_revoke, self._db_revoke_undo)
        registry.register("push_revocations", self._push, self._noop)

    # -- requests ----------------------------------------------------------------------------

    def create(self, body: m.CredentialCreate) -> m.CredentialIssued:
        if self.ca_dir is None:
            # A 409, not a 5xx: gfsd works, its configuration cannot do this.
            raise GfsError(
                "busy",
                "no_ca",
                "gfsd has no cluster CA to sign with (start it with --ca-dir DIR)",
            )
        volumes = sorted(set(body.volumes))
        with self.db.session() as s:
            if s.scalar(select(Credential).where(Credential.name == body.name)) is not None:
                raise GfsError(
                    "already_exists", "credential_exists", f"credential {body.name} exists"
                )
            known = set(s.scalars(select(Volume.name).where(Volume.name.in_(volumes))))
        missing = [v for v in volumes if v not in known]
        if missing:
            raise GfsError("not_found", "volume_not_found", f"no volume {missing[0]!r}")
        with tempfile.TemporaryDirectory(prefix="gfs-cred-") as tmp:
            try:
                folder = certs.issue(
                    self.ca_dir, "client", body.name, volumes, hosts=[], out=Path(tmp) / "id"
                )
            except (certs.CertError, OSError) as e:
                raise GfsError("busy", "ca_error", f"cannot sign: {e}") from e
            ca = (folder / certs.CA_CERT).read_text()
            cert = (folder / certs.CERT).read_text()
            key = (folder / certs.KEY).read_text()
        parsed = x509.load_pem_x509_certificate(cert.encode())
        token = secrets.token_urlsafe(32)
        params: dict[str, Any] = {
            "id": new_id(),
            "name": body.name,
            "volumes": volumes,
            "fingerprint": certs.fingerprint(cert.encode()),
            "serial": format(parsed.serial_number, "x"),
            "token_hash": token_hash(token),
            "not_after": parsed.not_valid_after_utc.replace(tzinfo=None).isoformat(),
        }
        assert self.engine is not None
        try:
            self.engine.run("credential_create", None, [Step("db_credential", params)])
        except IntegrityError as e:
            raise GfsError(
                "already_exists", "credential_exists", f"credential {body.name} exists"
            ) from e
        wire = self.get(body.name)
        return m.CredentialIssued(**wire.model_dump(), ca=ca, cert=cert, key=key, token=token)

    def get(self, name: str) -> m.Credential:
        with self.db.session() as s:
            return _wire(self._row(s, name))

    def list(self, volume: str | None = None) -> list[m.Credential]:
        with self.db.session() as s:
            rows = [_wire(c) for c in s.scalars(select(Credential).order_by(Credential.name))]
        return [c for c in rows if volume is None or volume in c.volumes]

    def revoke(self, name: str) -> m.Credential:
        with self.db.session() as s:
            row = self._row(s, name)
            if row.revoked is not None:
                raise GfsError(
                    "busy", "credential_revoked", f"credential {name} is revoked already"
                )
            cred_id = row.id
        assert self.engine is not None
        self.engine.run(
            "credential_revoke",
            None,
            [Step("db_credential_revoke", {"id": cred_id}), Step("push_revocations", {})],
        )
        return self.get(name)

    def volumes_of_token(self, token: str) -> frozenset[str] | None:
        """The volumes a credential token may read, None for no such credential; a
        revoked or expired one is refused by name."""
        with self.db.session() as s:
            row = s.scalar(select(Credential).where(Credential.token_hash == token_hash(token)))
            if row is None:
                return None
            if row.revoked is not None or row.not_after < now():
                why = "revoked" if row.revoked is not None else "expired"
                raise GfsError(
                    "unauthorized", f"credential_{why}", f"credential {row.name} is {why}"
                )
            return frozenset(row.volumes)

    @staticmethod
    def _row(s: Any, name: str) -> Credential:
        row = s.scalar(select(Credential).where(Credential.name == name))
        if row is None:
            raise GfsError("not_found", "credential_not_found", f"no credential {name!r}")
        return row  # type: ignore[no-any-return]

    # -- transaction steps -------------------------------------------------------------------

    def _db_credential(self, _: Any, p: dict[str, Any]) -> Result:
        with self.db.session() as s:
            s.add(
                Credential(
                    id=p["id"],
                    name=p["name"],
                    volumes=p["volumes"],
                    fingerprint=p["fingerprint"],
                    serial=p["serial"],
                    token_hash=p["token_hash"],
                    not_after=datetime.fromisoformat(p["not_after"]),
                )
            )
            s.add(
                Event(
                    kind="credential_created",
                    volume=None,
                    message=f"credential {p['name']} for {', '.join(p['volumes'])}",
                    payload={"fingerprint": p["fingerprint"]},
                )
            )
        return {"id": p["id"]}

    def _db_credential_undo(self, _: Any, p: dict[str, Any], result: Result) -> None:
        # By id, made before the transaction: never another credential of that name.
        with self.db.session() as s:
            row = s.get(Credential, p["id"])
            if row is not None:
                s.delete(row)

    def _db_revoke(self, _: Any, p: dict[str, Any]) -> Result:
        with self.db.session() as s:
            row = s.get(Credential, p["id"])
            if row is None:
                raise GfsError("not_found", "credential_not_found", "credential deleted meanwhile")
            if row.revoked is not None:
                return {"was_revoked": True}
            row.revoked = datetime.now(UTC).replace(tzinfo=None)
            s.add(
                Event(
                    kind="credential_revoked",
                    volume=None,
                    message=f"credential {row.name} revoked",
                    payload={"fingerprint": row.fingerprint},
                )
            )
        return {"was_revoked": False}

    def _db_revoke_undo(self, _: Any, p: dict[str, Any], result: Result) -> None:
        if result is None or result.get("was_revoked"):
            return  # nothing of ours to take back
        with self.db.session() as s:
            row = s.get(Credential, p["id"])
            if row is not None:
                row.revoked = None

    def _push(self, _: Any, p: dict[str, Any]) -> Result:
        # Never fails the revoke: the record is what counts, and the peer monitor brings
        # every daemon that missed this push up to date.
        failed = push_revocations(self.db)
        return {"missed": sorted(failed)}

    @staticmethod
    def _noop(_: Any, p: dict[str, Any], result: Result) -> None:
        return None
