"""Mutual TLS for gRPC: the process's identity, channel and server credentials, and the
role of the peer of a call.

A process loads its identity folder once (`use(load(DIR))`); every channel opened by
gfs.rpc.channel.channel() then presents that certificate and checks the server's against
the same cluster CA. A process that loaded nothing opens plaintext channels.
"""

from __future__ import annotations

import functools
import ipaddress
import logging
import os
import threading
from pathlib import Path
from typing import Any

import grpc
from cryptography import x509

from gfs.certs import (
    CA_CERT,
    CERT,
    KEY,
    CertError,
    Identity,
    Material,
    fingerprint,
    identity_from_uris,
    load,
)

__all__ = [
    "CertError",
    "Identity",
    "Material",
    "Reloader",
    "channel_credentials",
    "current",
    "generation",
    "host_key",
    "load",
    "load_dir",
    "node_hosts",
    "peer_fingerprint",
    "peer_identity",
    "server_credentials",
    "use",
]

log = logging.getLogger(__name__)

_current: Material | None = None
_generation = 0


def use(material: Material | None) -> None:
    """Make `material` this process's identity for every channel opened from now on."""
    global _current, _generation
    _current = material
    _generation += 1


def current() -> Material | None:
    return _current


def generation() -> int:
    """Bumped by every use(): long-lived channels made before are due for replacement."""
    return _generation


def load_dir(directory: Path | str) -> Material:
    return load(Path(directory))


def channel_credentials(material: Material | None = None) -> grpc.ChannelCredentials | None:
    m = material or _current
    if m is None:
        return None
    return grpc.ssl_channel_credentials(
        root_certificates=m.ca, private_key=m.key, certificate_chain=m.cert
    )


def server_credentials(material: Material) -> grpc.ServerCredentials:
    """A server that accepts only clients with a certificate from the cluster CA."""
    return grpc.ssl_server_credentials(
        [(material.key, material.cert)], root_certificates=material.ca, require_client_auth=True
    )


class Reloader:
    """A server's identity folder, read again when its files change, so certificates
    and trusted CAs are replaced without a restart (rotation). gRPC asks `fetch` at
    every new connection; a folder caught half-written or holding something unusable
    keeps the current identity (logged once per change) until it is fixed."""

    def __init__(self, directory: Path, material: Material, role: str) -> None:
        self.directory = directory
        self.material = material
        self.role = role
        self._seen = self._signature()
        self._lock = threading.Lock()

    def _signature(self) -> tuple[tuple[int, int, int], ...]:
        out = []
        for name in (CA_CERT, CERT, KEY):
            try:
                st = os.stat(self.directory / name)
            except OSError:
                out.append((0, 0, 0))
                continue
            out.append((st.st_ino, st.st_size, st.st_mtime_ns))
        return tuple(out)

    def fetch(self) -> grpc.ServerCertificateConfiguration | None:
        try:
            with self._lock:
                sig = self._signature()
                if sig == self._seen:
                    return None
                self._seen = sig
                try:
                    m = load(self.directory)
                    if m.identity.role != self.role:
                        raise CertError(f"certificate role is {m.identity.role}, not {self.role}")
                except CertError as e:
                    log.error(
                        "tls reload refused dir=%s: %s (serving the previous one)",
                        self.directory,
                        e,
                    )
                    return None
                self.material = m
                use(m)
                log.info(
                    "tls reloaded dir=%s name=%s not_after=%s",
                    self.directory,
                    m.identity.name,
                    m.not_after.isoformat(),
                )
                return grpc.ssl_server_certificate_configuration(
                    [(m.key, m.cert)], root_certificates=m.ca
                )
        except Exception:  # called from gRPC's core: never let it raise there
            log.exception("tls reload failed dir=%s", self.directory)
            return None

    def credentials(self) -> grpc.ServerCredentials:
        m = self.material
        initial = grpc.ssl_server_certificate_configuration(
            [(m.key, m.cert)], root_certificates=m.ca
        )
        return grpc.dynamic_ssl_server_credentials(
            initial, self.fetch, require_client_authentication=True
        )


def peer_identity(context: Any) -> Identity | None:
    """The verified identity of the caller of a server call; None for plaintext peers or
    certificates without a (single) gfs role. gRPC verified the chain already."""
    auth = context.auth_context()
    uris = [u.decode() for u in auth.get("peer_uri", ())]
    if not uris:
        return None
    names = auth.get("x509_common_name", (b"",))
    try:
        return identity_from_uris(uris, names[0].decode())
    except CertError:
        return None


def host_key(host: str) -> str:
    """A host as certificates and addresses are compared: IPs normalized, names
    lowercased."""
    try:
        return str(ipaddress.ip_address(host.strip("[]")))
    except ValueError:
        return host.lower().rstrip(".")


@functools.lru_cache(maxsize=256)
def _cert_hosts(pem: bytes) -> frozenset[str]:
    try:
        cert = x509.load_pem_x509_certificate(pem)
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except (ValueError, x509.ExtensionNotFound):
        return frozenset()
    names = [str(ip) for ip in san.get_values_for_type(x509.IPAddress)]
    names += san.get_values_for_type(x509.DNSName)
    return frozenset(host_key(n) for n in names)


def node_hosts(context: Any) -> frozenset[str] | None:
    """The hosts a calling brick daemon's certificate is valid for, so a member can
    check that a forward or heal claiming to come from member X comes from a daemon
    certified for X's host. None when the caller is not a node (plaintext, admin)."""
    ident = peer_identity(context)
    if ident is None or ident.role != "node":
        return None
    pems = context.auth_context().get("x509_pem_cert", ())
    return _cert_hosts(pems[0]) if pems else frozenset()


@functools.lru_cache(maxsize=4096)
def _fingerprint(pem: bytes) -> str | None:
    # Cached: parsing a certificate on every call would cost more than the call, and a
    # daemon meets few distinct certificates.
    try:
        return fingerprint(pem)
    except CertError:
        return None


def peer_fingerprint(context: Any) -> str | None:
    """The SHA-256 fingerprint of the caller's certificate (None for plaintext peers),
    what the brick's revocation list holds."""
    pems = context.auth_context().get("x509_pem_cert", ())
    return _fingerprint(pems[0]) if pems else None
