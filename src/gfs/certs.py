"""The cluster's certificates: a CA, and identities issued by it that carry a role.

A certificate's role and volumes are URI subject alternative names:

    gfs:role/node        a brick daemon (may call Forward, heal and every data RPC)
    gfs:role/admin       gfsd or an operator (may call the Admin service)
    gfs:role/client      a mount (data RPCs of the volumes named below only)
    gfs:volume/NAME      one volume a client certificate may use (repeatable)

An identity is a folder holding `ca.crt`, `tls.crt` and `tls.key` (0600, folder 0700):
what one process needs, copied to its machine as a whole. This module is plain file
work (no gRPC), so the CLI may use it.
"""

from __future__ import annotations

import datetime
import hashlib
import ipaddress
import os
import re
import socket
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

ROLES = ("node", "admin", "client")
ROLE_PREFIX = "gfs:role/"
VOLUME_PREFIX = "gfs:volume/"
CA_CERT = "ca.crt"
CA_KEY = "ca.key"
CERT = "tls.crt"
KEY = "tls.key"
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")
#: volume names as gfsd accepts them (a certificate naming another string is useless)
VOLUME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")
CA_DAYS = 3650
CERT_DAYS = 825


class CertError(Exception):
    """Bad input or unusable files: one line to the user."""


@dataclass(frozen=True)
class Identity:
    """Who a certificate names: its role and (for clients) the volumes it may use."""

    name: str
    role: str
    volumes: frozenset[str]


def _write(path: Path, data: bytes, mode: int) -> None:
    # Created with its final mode (a key is never readable by others, not even briefly)
    # and renamed into place: a daemon reloading its folder never reads half a file.
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.chmod(tmp, mode)
    os.replace(tmp, path)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def init_ca(directory: Path, name: str = "gfs cluster CA") -> Path:
    """Make a new cluster CA in `directory` (created 0700); refuses to replace one."""
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(directory, 0o700)
    if (directory / CA_KEY).exists() or (directory / CA_CERT).exists():
        raise CertError(f"{directory} already holds a CA ({CA_CERT}); refusing to replace it")
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = _now()
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=CA_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
        .sign(key, hashes.SHA256())
    )
    _write(directory / CA_KEY, _key_pem(key), 0o600)
    _write(directory / CA_CERT, cert.public_bytes(serialization.Encoding.PEM), 0o644)
    return directory / CA_CERT


def _load_ca(directory: Path) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    try:
        cert = x509.load_pem_x509_certificate((directory / CA_CERT).read_bytes())
        key = serialization.load_pem_private_key((directory / CA_KEY).read_bytes(), None)
    except FileNotFoundError as e:
        raise CertError(f"{directory}: no CA here (run `gfs certs init {directory}`)") from e
    except (OSError, ValueError) as e:
        raise CertError(f"{directory}: unreadable CA: {e}") from e
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise CertError(f"{directory}: CA key is not an EC key")
    return cert, key


def default_hosts() -> list[str]:
    """The names a node certificate is valid for when none are given: loopback and
    this machine's host name."""
    return sorted({"localhost", "127.0.0.1", "::1", socket.gethostname(), socket.getfqdn()})


def issue(
    ca_dir: Path,
    role: str,
    name: str,
    volumes: list[str] | None = None,
    hosts: list[str] | None = None,
    out: Path | None = None,
    days: int = CERT_DAYS,
) -> Path:
    """Issue an identity signed by the CA in `ca_dir` into `out` (default ca_dir/NAME);
    returns that folder. `hosts` are DNS names or IP addresses the certificate is valid
    for as a server (default: loopback and this host)."""
    if role not in ROLES:
        raise CertError(f"role {role!r}: use one of {', '.join(ROLES)}")
    if not NAME.match(name):
        raise CertError(f"name {name!r}: letters, digits, '.', '_' and '-' only")
    volumes = volumes or []
    for v in volumes:
        if not VOLUME.match(v):
            raise CertError(f"volume {v!r} is not a volume name")
    if volumes and role != "client":
        raise CertError("--volume is for client certificates (nodes and admins see all)")
    if role == "client" and not volumes:
        raise CertError("a client certificate needs at least one --volume")
    if not 1 <= days <= 36500:
        raise CertError("days must be between 1 and 36500")
    ca_cert, ca_key = _load_ca(ca_dir)
    sans: list[x509.GeneralName] = [x509.UniformResourceIdentifier(ROLE_PREFIX + role)]
    sans += [x509.UniformResourceIdentifier(VOLUME_PREFIX + v) for v in sorted(set(volumes))]
    for h in default_hosts() if hosts is None else hosts:
        try:
            sans.append(x509.IPAddress(ipaddress.ip_address(h)))
        except ValueError:
            sans.append(x509.DNSName(h))
    key = ec.generate_private_key(ec.SECP256R1())
    now = _now()
    cert = (
        x509.CertificateBuilder()
        .subject_name(
            x509.Name(
                [
                    x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, role),
                    x509.NameAttribute(NameOID.COMMON_NAME, name),
                ]
            )
        )
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(min(now + datetime.timedelta(days=days), ca_cert.not_valid_after_utc))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
            ),
            critical=False,
        )
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False
        )
        .sign(ca_key, hashes.SHA256())
    )
    target = out or ca_dir / name
    target.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(target, 0o700)
    # Other CAs the folder already trusts stay trusted (a CA rotation in progress).
    trusted = [ca_cert] + [c for c in _bundle(target / CA_CERT) if c != ca_cert]
    _write(target / CA_CERT, _pem(trusted), 0o644)
    _write(target / KEY, _key_pem(key), 0o600)
    _write(target / CERT, cert.public_bytes(serialization.Encoding.PEM), 0o644)
    return target


def _pem(certs: list[x509.Certificate]) -> bytes:
    return b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certs)


def _bundle(path: Path) -> list[x509.Certificate]:
    """The CA certificates in `path`; none when it does not exist."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return []
    except OSError as e:
        raise CertError(f"{path}: {e.strerror}") from e
    try:
        return x509.load_pem_x509_certificates(data)
    except ValueError as e:
        raise CertError(f"{path}: no readable PEM certificates: {e}") from e


def _issuer(cert: x509.Certificate, cas: list[x509.Certificate]) -> x509.Certificate | None:
    for ca in cas:
        try:
            cert.verify_directly_issued_by(ca)
        except (ValueError, TypeError, InvalidSignature):
            continue
        return ca
    return None


def trust(directory: Path, extra: list[Path]) -> list[str]:
    """Set the CAs an identity folder trusts: the CA that signed its certificate plus
    the CA certificates in `extra` (files, or CA folders holding ca.crt); with no
    `extra`, only its own CA, which ends a CA rotation. Returns the trusted CAs'
    names. A running gfs-brickd picks the change up without a restart."""
    try:
        cert = x509.load_pem_x509_certificate((directory / CERT).read_bytes())
    except OSError as e:
        raise CertError(f"TLS folder {directory}: {e.filename}: {e.strerror}") from e
    except ValueError as e:
        raise CertError(f"TLS folder {directory}: unreadable {CERT}: {e}") from e
    added: list[x509.Certificate] = []
    for p in extra:
        found = _bundle(p / CA_CERT if p.is_dir() else p)
        if not found:
            raise CertError(f"{p}: no CA certificate there")
        for c in found:
            try:
                bc = c.extensions.get_extension_for_class(x509.BasicConstraints).value
            except x509.ExtensionNotFound:
                bc = None
            if bc is None or not bc.ca:
                raise CertError(f"{p}: {_common_name(c)!r} is not a CA certificate")
            added.append(c)
    own = _issuer(cert, _bundle(directory / CA_CERT) + added)
    if own is None:
        raise CertError(
            f"TLS folder {directory}: the CA that signed {CERT} is neither in {CA_CERT} "
            "nor given; give its ca.crt too"
        )
    trusted = [own] + [c for i, c in enumerate(added) if c != own and c not in added[:i]]
    _write(directory / CA_CERT, _pem(trusted), 0o644)
    return [_common_name(c) for c in trusted]


def fingerprint(pem: bytes) -> str:
    """SHA-256 of a PEM certificate's DER form, hex: how revocation names a certificate."""
    try:
        cert = x509.load_pem_x509_certificate(pem)
    except ValueError as e:
        raise CertError(f"unreadable certificate: {e}") from e
    return cert.fingerprint(hashes.SHA256()).hex()


def revoked_digest(fingerprints: frozenset[str] | set[str]) -> str:
    """One value for a revocation list ('' when empty): gfsd and a brick daemon compare
    theirs to see whether the daemon's list is current."""
    if not fingerprints:
        return ""
    return hashlib.sha256("\n".join(sorted(fingerprints)).encode()).hexdigest()


def identity_of(cert: x509.Certificate) -> Identity:
    """The role and volumes a certificate carries (CertError when it names no role)."""
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound as e:
        raise CertError("certificate has no subject alternative names (no gfs role)") from e
    return identity_from_uris(
        san.get_values_for_type(x509.UniformResourceIdentifier),
        _common_name(cert),
    )


def identity_from_uris(uris: list[str], name: str) -> Identity:
    roles = [u.removeprefix(ROLE_PREFIX) for u in uris if u.startswith(ROLE_PREFIX)]
    if len(roles) != 1 or roles[0] not in ROLES:
        raise CertError(f"certificate {name!r} carries no single gfs role")
    volumes = frozenset(u.removeprefix(VOLUME_PREFIX) for u in uris if u.startswith(VOLUME_PREFIX))
    return Identity(name, roles[0], volumes)


def _common_name(cert: x509.Certificate) -> str:
    cns = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(cns[0].value) if cns else ""


@dataclass(frozen=True)
class Material:
    """One process's TLS files, read and checked."""

    ca: bytes
    cert: bytes
    key: bytes
    identity: Identity
    not_after: datetime.datetime


def load(directory: Path) -> Material:
    """Read an identity folder (ca.crt, tls.crt, tls.key); CertError with one line when
    a file is missing, unreadable, expired, or not signed by the folder's CA."""
    try:
        ca = (directory / CA_CERT).read_bytes()
        cert_pem = (directory / CERT).read_bytes()
        key_pem = (directory / KEY).read_bytes()
    except OSError as e:
        raise CertError(f"TLS folder {directory}: {e.filename}: {e.strerror}") from e
    try:
        cas = x509.load_pem_x509_certificates(ca)
        cert = x509.load_pem_x509_certificate(cert_pem)
        key = serialization.load_pem_private_key(key_pem, None)
    except ValueError as e:
        raise CertError(f"TLS folder {directory}: unreadable certificate or key: {e}") from e
    if os.stat(directory / KEY).st_mode & 0o077:
        raise CertError(f"TLS folder {directory}: {KEY} is readable by others (chmod 600 it)")
    # ca.crt may hold several CAs while the cluster moves to a new one.
    if _issuer(cert, cas) is None:
        raise CertError(f"TLS folder {directory}: {CERT} is not signed by {CA_CERT}")
    pub = cert.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    if (
        key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        != pub
    ):
        raise CertError(f"TLS folder {directory}: {KEY} does not match {CERT}")
    if cert.not_valid_after_utc < _now():
        raise CertError(f"TLS folder {directory}: {CERT} expired {cert.not_valid_after_utc}")
    return Material(ca, cert_pem, key_pem, identity_of(cert), cert.not_valid_after_utc)
