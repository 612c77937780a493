"""withdrawn options: drop stored values of options whose effect was never built

`auth.allow` and `heal.throttle-mbps` were accepted and stored but did nothing; they
are no longer options (gfs_mgmt.volume.options.WITHDRAWN), so values already stored
would be shown as if they applied. They are deleted, with an event per volume so the
removal is on record. The downgrade cannot bring them back (they had no effect).

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01 23:50:00
"""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

WITHDRAWN = ("auth.allow", "heal.throttle-mbps")


def upgrade() -> None:
    conn = op.get_bind()
    options = sa.table(
        "volume_options", sa.column("volume_id", sa.String), sa.column("key", sa.String)
    )
    volumes = sa.table("volumes", sa.column("id", sa.String), sa.column("name", sa.String))
    events = sa.table(
        "events",
        sa.column("kind", sa.String),
        sa.column("volume", sa.String),
        sa.column("message", sa.Text),
        sa.column("payload", sa.JSON),
        sa.column("ts", sa.DateTime),
    )
    rows = conn.execute(
        sa.select(volumes.c.name, options.c.key)
        .join(options, options.c.volume_id == volumes.c.id)
        .where(options.c.key.in_(WITHDRAWN))
        .order_by(volumes.c.name, options.c.key)
    ).all()
    by_volume: dict[str, list[str]] = {}
    for name, key in rows:
        by_volume.setdefault(name, []).append(key)
    conn.execute(sa.delete(options).where(options.c.key.in_(WITHDRAWN)))
    for name, keys in by_volume.items():
        conn.execute(
            sa.insert(events).values(
                kind="volume_options_withdrawn",
                volume=name,
                message=f"removed {', '.join(keys)}: never had an effect (not supported yet)",
                payload={},
                ts=datetime.now(UTC).replace(tzinfo=None),
            )
        )


def downgrade() -> None:
    pass
