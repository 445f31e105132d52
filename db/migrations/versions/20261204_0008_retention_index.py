"""Retention: ended requests by when they ended, for the recovery job's pruning

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-04 20:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        "ix_request_ended_at",
        "request",
        ["updated_at"],
        postgresql_where=sa.text("status IN ('succeeded', 'failed', 'rejected')"),
    )


def downgrade() -> None:
    op.drop_index("ix_request_ended_at", table_name="request")
