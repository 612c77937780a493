"""gfs.rpc.ops is the one table of data-path operations: it must list exactly the Brick
service's RPCs, with their request and reply types, and its derived sets must agree."""

from __future__ import annotations

import os

from gfs.proto import brick_pb2 as pb
from gfs.rpc import ops


def test_table_is_the_brick_service() -> None:
    service = pb.DESCRIPTOR.services_by_name["Brick"]
    rpcs = {m.name: m for m in service.methods}
    table = {name: op for name, op in ops.OPS.items() if op.rpc}
    assert set(table) == set(rpcs), "add the new RPC to gfs/rpc/ops.py (or drop it there)"
    for name, m in rpcs.items():
        op = table[name]
        assert op.request.DESCRIPTOR.full_name == m.input_type.full_name, name
        assert op.reply.DESCRIPTOR.full_name == m.output_type.full_name, name


def test_kinds_and_flags_agree() -> None:
    for op in ops.OPS.values():
        assert op.kind in (ops.PROBE, ops.READ, ops.MUTATION, ops.HANDLE, ops.REPLICATION,
                           ops.SESSION), op  # fmt: skip
        if op.fd:
            assert op.kind == ops.HANDLE and op.forwarded, op
        assert bool(op.keys) == (op.kind == ops.MUTATION), op
        for key in op.keys:
            assert key in op.request.DESCRIPTOR.fields_by_name, (op.name, key)
    assert not ops.names(ops.READ) & set(ops.FORWARDED)
    assert "Release" not in ops.FORWARDED and "Flush" not in ops.FORWARDED


def test_open_is_forwarded_only_when_it_truncates() -> None:
    assert ops.forwards("Open", pb.OpenRequest(flags=os.O_WRONLY | os.O_TRUNC))
    assert not ops.forwards("Open", pb.OpenRequest(flags=os.O_WRONLY))
    assert not ops.forwards("Unpin", pb.GfidRequest())
    assert not ops.forwards("Read", pb.ReadRequest())
    assert ops.forwards("Write", pb.WriteRequest())
