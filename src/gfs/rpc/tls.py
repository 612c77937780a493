"""Mutual TLS for gRPC: the process's identity, channel and server credentials, and the
role of the peer of a call.

A process loads its identity folder once (`use(load(DIR))`); every channel opened by
gfs.rpc.channel.channel() then presents that certificate and checks the server's against
the same cluster CA. A process that loaded nothing opens plaintext channels.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import grpc

from gfs.certs import CertError, Identity, Material, fingerprint, identity_from_uris, load

__all__ = [
    "CertError",
    "Identity",
    "Material",
    "channel_credentials",
    "current",
    "load",
    "load_dir",
    "peer_fingerprint",
    "peer_identity",
    "server_credentials",
    "use",
]

_current: Material | None = None
#: PEM -> fingerprint of the peers seen: parsing a certificate on every call would cost
#: more than the call; a daemon meets few distinct certificates.
_fingerprints: dict[bytes, str] = {}
_FINGERPRINTS_MAX = 4096


def use(material: Material | None) -> None:
    """Make `material` this process's identity for every channel opened from now on."""
    global _current
    _current = material


def current() -> Material | None:
    return _current


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


def peer_fingerprint(context: Any) -> str | None:
    """The SHA-256 fingerprint of the caller's certificate (None for plaintext peers)."""
    pems = context.auth_context().get("x509_pem_cert", ())
    if not pems:
        return None
    pem = pems[0]
    fp = _fingerprints.get(pem)
    if fp is None:
        try:
            fp = fingerprint(pem)
        except CertError:
            return None
        if len(_fingerprints) >= _FINGERPRINTS_MAX:
            _fingerprints.clear()
        _fingerprints[pem] = fp
    return fp
