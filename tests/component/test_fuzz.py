"""Hostile messages to every Brick and Admin RPC of a real gfs-brickd over mutual TLS
(issue 12, "Fuzzing"): messages are drawn from the .proto descriptors, so a new RPC
or field is fuzzed without touching this file. Whatever arrives, the daemon must stay
up, answer with errno data or a refusal (never an unhandled exception: no gRPC
UNKNOWN/INTERNAL status, no traceback in its log), and leave alone what the caller
may not touch: a client's calls never change the other volume's brick, nothing ever
changes a folder outside the daemon's bricks.

Bounded by example count and by `GFS_FUZZ_SECONDS` per role."""

from __future__ import annotations

import hashlib
import os
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf import message_factory
from google.protobuf.descriptor import Descriptor, FieldDescriptor, MethodDescriptor
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gfs import certs
from gfs.proto import admin_pb2, brick_pb2
from tests.procs import BrickDaemon, tls_channel

ROOT = uuid.UUID(int=1).bytes
SECONDS = float(os.environ.get("GFS_FUZZ_SECONDS", "20"))
EXAMPLES = int(os.environ.get("GFS_FUZZ_EXAMPLES", "1000"))
# Statuses that a handler raising, rather than answering, produces.
CRASHED = (grpc.StatusCode.UNKNOWN, grpc.StatusCode.INTERNAL)

HOSTILE_NAMES = [
    b"ok",
    b".",
    b"..",
    b"a/b",
    b"../../x",
    b"/etc",
    b"a\x00b",
    b"x" * 256,
    b"y" * 4096,
    b".gfs",
    b"",
]
HOSTILE_TARGETS = [
    b"../../00/00/00000000-0000-0000-0000-000000000001/../../../../../../outside",
    b"/etc/passwd",
    b"../" * 40 + b"outside",
    b"..\x00",
]
INTS = [0, 1, 2, 7, 4096, 1 << 20, (1 << 31) - 1, (1 << 32) - 1, (1 << 62), (1 << 63) - 1]
NEGATIVE = [-1, -4096, -(1 << 63)]
ALWAYS = {"brick", "gfid", "parent"}
EPOCHS = [None, "0", "1", "2", "3", "1000000", str((1 << 63) - 1), "-1", "abc", ""]


@dataclass
class Target:
    daemon: BrickDaemon
    ca: Path
    outside: Path
    other: Path  # the brick of another volume on the same daemon
    gfids: list[bytes] = field(default_factory=list)


def snapshot(root: Path) -> dict[str, tuple[int, int, str]]:
    """Every path under `root` with its mode, size and content digest."""
    out: dict[str, tuple[int, int, str]] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for n in dirnames + filenames:
            p = Path(dirpath) / n
            st_ = p.lstat()
            digest = ""
            if p.is_file() and not p.is_symlink():
                digest = hashlib.sha256(p.read_bytes()).hexdigest()
            out[str(p.relative_to(root))] = (st_.st_mode, st_.st_size, digest)
    return out


@pytest.fixture(scope="module")
def target(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Target]:
    tmp = tmp_path_factory.mktemp("fuzz")
    ca = tmp / "ca"
    certs.init_ca(ca)
    certs.issue(ca, "node", "node0", hosts=["127.0.0.1"])
    certs.issue(ca, "node", "peer", hosts=["127.0.0.1"])
    certs.issue(ca, "admin", "gfsd", hosts=["127.0.0.1"])
    certs.issue(ca, "client", "web", volumes=["b0"], hosts=[])
    outside = tmp / "outside"
    outside.mkdir()
    (outside / "secret").write_bytes(b"not for bricks\n")
    os.chmod(outside / "secret", 0o600)
    d = BrickDaemon(
        {"b0": tmp / "b0", "b1": tmp / "b1"}, tmp / "brickd.log", tls=ca / "node0"
    ).start()
    t = Target(d, ca, outside, tmp / "b1", [ROOT, uuid.uuid4().bytes, b"", b"\x01" * 3])
    # A few real objects on each brick, so hostile calls find something to aim at.
    with tls_channel(d.address, ca / "gfsd") as ch:
        stub = brick_pb2.DESCRIPTOR.services_by_name["Brick"]
        make = ch.unary_unary(
            f"/{stub.full_name}/MakeNode",
            request_serializer=brick_pb2.MakeNodeRequest.SerializeToString,
            response_deserializer=brick_pb2.EntryReply.FromString,
        )
        for brick in ("b0", "b1"):
            for kind, mode, name in (
                (brick_pb2.NODE_KIND_DIR, 0o40755, b"dir"),
                (brick_pb2.NODE_KIND_FILE, 0o100644, b"file"),
                (brick_pb2.NODE_KIND_SYMLINK, 0o120777, b"link"),
            ):
                gfid = uuid.uuid4().bytes
                req = brick_pb2.MakeNodeRequest(
                    brick=brick, parent=ROOT, name=name, kind=kind, mode=mode, gfid=gfid
                )
                if kind == brick_pb2.NODE_KIND_SYMLINK:
                    req.target = b"file"
                rep = make(req, timeout=10)
                assert rep.err == 0, (brick, name, rep.err)
                t.gfids.append(gfid)
    try:
        yield t
    finally:
        d.stop()


def field_values(f: FieldDescriptor, t: Target, depth: int) -> st.SearchStrategy[Any]:
    name = f.name
    if f.type == FieldDescriptor.TYPE_MESSAGE:
        if depth >= 2:
            return st.none()
        return message_of(f.message_type, t, depth + 1)
    if f.type == FieldDescriptor.TYPE_STRING:
        if name == "brick":
            return st.sampled_from(["b0"] * 12 + ["b1", "", "../b1", "nope", "b" * 300])
        if "path" in name or "dir" in name:
            out = t.outside
            return st.sampled_from([str(out), str(out / "new"), str(out / "secret"), "/", "..", ""])
        return st.sampled_from(["", "b0", "a/../..", "x" * 300, "\x00", "127.0.0.1:1", "*"])
    if f.type == FieldDescriptor.TYPE_BYTES:
        if "gfid" in name or name in ("parent", "new_parent", "old_parent", "dir"):
            return st.sampled_from(t.gfids) | st.sampled_from(t.gfids) | st.binary(max_size=20)
        if name == "target":
            return st.sampled_from(HOSTILE_TARGETS + HOSTILE_NAMES)
        return st.sampled_from(HOSTILE_NAMES) | st.binary(max_size=64)
    if f.type == FieldDescriptor.TYPE_BOOL:
        return st.booleans()
    if f.type == FieldDescriptor.TYPE_ENUM:
        numbers = [v.number for v in f.enum_type.values]
        return st.sampled_from([*numbers, max(numbers) + 1, 99])
    if f.type in (FieldDescriptor.TYPE_DOUBLE, FieldDescriptor.TYPE_FLOAT):
        return st.sampled_from([0.0, -1.0, 1e-9, 1e300, float("inf"), float("nan")])
    unsigned = f.type in (
        FieldDescriptor.TYPE_UINT32,
        FieldDescriptor.TYPE_UINT64,
        FieldDescriptor.TYPE_FIXED32,
        FieldDescriptor.TYPE_FIXED64,
    )
    bits = (
        32
        if f.type
        in (
            FieldDescriptor.TYPE_UINT32,
            FieldDescriptor.TYPE_INT32,
            FieldDescriptor.TYPE_SINT32,
            FieldDescriptor.TYPE_FIXED32,
            FieldDescriptor.TYPE_SFIXED32,
        )
        else 64
    )
    lo, hi = (0, (1 << bits) - 1) if unsigned else (-(1 << (bits - 1)), (1 << (bits - 1)) - 1)
    pool = [v for v in INTS + ([] if unsigned else NEGATIVE) if lo <= v <= hi]
    if name in ("mode",):
        pool += [0o104755, 0o60666, 0o20666, 0o10644, 0o140777, 0o177777]
    return st.sampled_from(pool)


def repeated(f: FieldDescriptor) -> bool:
    return bool(f.is_repeated)


_STRATEGIES: dict[tuple[str, int], st.SearchStrategy[Any]] = {}


def message_of(desc: Descriptor, t: Target, depth: int = 0) -> st.SearchStrategy[Any]:
    key = (desc.full_name, depth)
    if key not in _STRATEGIES:
        _STRATEGIES[key] = _message_of(desc, t, depth)
    return _STRATEGIES[key]


def _message_of(desc: Descriptor, t: Target, depth: int) -> st.SearchStrategy[Any]:
    cls = message_factory.GetMessageClass(desc)
    parts: dict[str, st.SearchStrategy[Any]] = {}
    for f in desc.fields:
        values = field_values(f, t, depth)
        if repeated(f):
            if f.message_type is not None and f.message_type.GetOptions().map_entry:
                continue  # maps: left empty
            parts[f.name] = st.lists(values.filter(lambda v: v is not None), max_size=3)
        elif f.name in ALWAYS:
            parts[f.name] = values  # aim at a served brick and real objects
        else:
            parts[f.name] = st.one_of(st.none(), values)

    @st.composite
    def build(draw: st.DrawFn) -> Any:
        msg = cls()
        for fname, strat in parts.items():
            v = draw(strat)
            if v is None:
                continue
            fd = desc.fields_by_name[fname]
            try:
                if repeated(fd):
                    getattr(msg, fname).extend(v)
                elif fd.type == FieldDescriptor.TYPE_MESSAGE:
                    getattr(msg, fname).CopyFrom(v)
                else:
                    setattr(msg, fname, v)
            except (ValueError, TypeError):
                continue  # a value the field's type cannot hold (oneof clash, range)
        return msg

    return build()


def methods(service: str) -> list[MethodDescriptor]:
    module = brick_pb2 if service == "Brick" else admin_pb2
    return list(module.DESCRIPTOR.services_by_name[service].methods)


def call(ch: grpc.Channel, m: MethodDescriptor, req: Any, epoch: str | None) -> None:
    reply_cls = message_factory.GetMessageClass(m.output_type)
    fn = ch.unary_unary(
        f"/{m.containing_service.full_name}/{m.name}",
        request_serializer=lambda r: r.SerializeToString(),
        response_deserializer=reply_cls.FromString,
    )
    md = None if epoch is None else [("gfs-epoch", epoch)]
    try:
        fn(req, timeout=5, metadata=md)
    except grpc.RpcError as e:
        code = e.code()
        assert code not in CRASHED, f"{m.name} {req!r} epoch={epoch}: {code} {e.details()}"
        # A handler that blocks (a lock wait) may run out of time: not a crash.
        assert code in (
            grpc.StatusCode.PERMISSION_DENIED,
            grpc.StatusCode.DEADLINE_EXCEEDED,
            grpc.StatusCode.INVALID_ARGUMENT,
            grpc.StatusCode.RESOURCE_EXHAUSTED,
        ), f"{m.name}: {code} {e.details()}"


def requests(t: Target, ms: list[MethodDescriptor]) -> st.SearchStrategy[Any]:
    return st.sampled_from(ms).flatmap(
        lambda m: st.tuples(st.just(m), message_of(m.input_type, t), st.sampled_from(EPOCHS))
    )


def fuzz(t: Target, identity: str, ms: list[MethodDescriptor], tag: str) -> None:
    budget = time.monotonic() + SECONDS
    with tls_channel(t.daemon.address, t.ca / identity) as ch:

        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        @given(data=st.data())
        def run(data: st.DataObject) -> None:
            if time.monotonic() > budget:
                return
            m, req, epoch = data.draw(requests(t, ms), label=tag)
            call(ch, m, req, epoch)

        run()


def healthy(t: Target) -> None:
    assert t.daemon.proc is not None and t.daemon.proc.poll() is None, "gfs-brickd died"
    assert t.daemon._ready(), "gfs-brickd stopped answering Ping"
    log = t.daemon.log.read_text(errors="replace")
    assert "Traceback" not in log, log[log.index("Traceback") - 2000 :][:6000]


def test_a_client_cannot_crash_the_daemon_or_touch_another_volume(target: Target) -> None:
    before_out, before_other = snapshot(target.outside), snapshot(target.other)
    fuzz(target, "web", methods("Brick") + methods("Admin"), "client")
    healthy(target)
    assert snapshot(target.outside) == before_out
    assert snapshot(target.other) == before_other


def test_a_node_cannot_crash_the_daemon_or_leave_its_bricks(target: Target) -> None:
    before_out = snapshot(target.outside)
    fuzz(target, "peer", methods("Brick"), "node")
    healthy(target)
    assert snapshot(target.outside) == before_out


def test_admin_calls_cannot_crash_the_daemon_or_leave_its_bricks(target: Target) -> None:
    before_out = snapshot(target.outside)
    fuzz(target, "gfsd", methods("Admin"), "admin")
    healthy(target)
    assert snapshot(target.outside) == before_out
