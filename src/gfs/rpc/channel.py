"""gRPC channel and server settings shared by every gfs process."""

from __future__ import annotations

import threading

import grpc

from gfs.rpc import tls

#: Largest data chunk a Read/Write carries (larger reads and writes are split).
MAX_CHUNK = 1 << 20
#: Message limit: one chunk plus headroom for the envelope and readdir batches.
MAX_MESSAGE = 8 << 20

OPTIONS: list[tuple[str, int]] = [
    ("grpc.max_send_message_length", MAX_MESSAGE),
    ("grpc.max_receive_message_length", MAX_MESSAGE),
    # Detect a dead peer in seconds, not at the TCP timeout.
    ("grpc.keepalive_time_ms", 10_000),
    ("grpc.keepalive_timeout_ms", 5_000),
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.http2.max_pings_without_data", 0),
    # A restarted daemon is back in about a second: grpc's default reconnect backoff
    # (growing to two minutes) would keep a channel failing long after it returned.
    ("grpc.initial_reconnect_backoff_ms", 200),
    ("grpc.min_reconnect_backoff_ms", 200),
    ("grpc.max_reconnect_backoff_ms", 1000),
]

SERVER_OPTIONS: list[tuple[str, int]] = [
    ("grpc.max_send_message_length", MAX_MESSAGE),
    ("grpc.max_receive_message_length", MAX_MESSAGE),
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.http2.min_ping_interval_without_data_ms", 5_000),
    ("grpc.so_reuseport", 0),
]


def insecure_channel(address: str) -> grpc.Channel:
    """A channel to `address` (host:port) with gfs's limits and keepalives."""
    return grpc.insecure_channel(address, options=OPTIONS)


def channel(address: str) -> grpc.Channel:
    """A channel to `address` with mutual TLS when this process loaded an identity
    (gfs.rpc.tls.use), plaintext otherwise."""
    creds = tls.channel_credentials()
    if creds is None:
        return insecure_channel(address)
    return grpc.secure_channel(address, creds, options=OPTIONS)


def parse_address(text: str) -> tuple[str, int]:
    """Split 'HOST:PORT' (or '[V6]:PORT'); ValueError with a clear message."""
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"{text!r} is not HOST:PORT")
    return host.strip("[]"), int(port)


_shared: dict[str, tuple[int, grpc.Channel]] = {}
_shared_lock = threading.Lock()


def shared_channel(address: str) -> grpc.Channel:
    """One long-lived channel per address for daemons that call many peers: a channel
    per call costs a TCP and HTTP/2 handshake each time. A new identity (a reloaded
    certificate) gets new channels; the old ones are left to finish their calls and
    are closed when the last reference goes."""
    gen = tls.generation()
    with _shared_lock:
        got = _shared.get(address)
        if got is None or got[0] != gen:
            got = _shared[address] = (gen, channel(address))
        return got[1]
