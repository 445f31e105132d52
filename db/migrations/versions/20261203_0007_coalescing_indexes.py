"""Indexes for coalescing workers: a zone's waiting requests; an RRset's changes by version

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-03 00:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        "ix_request_waiting_zone",
        "request",
        ["zone_id", "created_at"],
        postgresql_where=sa.text("status IN ('queued', 'retrying')"),
    )
    op.create_index("ix_request_change_rrset_version", "request_change", ["owner", "rtype", "version"])


def downgrade() -> None:
    op.drop_index("ix_request_change_rrset_version", table_name="request_change")
    op.drop_index("ix_request_waiting_zone", table_name="request")
