"""Quotas: each client's limits and use of the day, and who created each RRset

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07 14:00:00

An RRset that exists already is counted against the client of the latest request that created
it, where that request is still kept, else of the last request that wrote it; one written by
neither (the CLI's imports, or a request pruned long ago) counts against nobody.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("api_client", sa.Column("max_rrsets", sa.Integer(), nullable=True))
    op.add_column("api_client", sa.Column("max_changes_per_day", sa.Integer(), nullable=True))
    op.add_column("api_client", sa.Column("usage_day", sa.Date(), nullable=True))
    op.add_column("api_client", sa.Column("changes_on_day", sa.Integer(), server_default="0", nullable=False))
    op.add_column("rrset", sa.Column("created_by", sa.String(length=64), nullable=True))
    op.execute(
        """
        UPDATE rrset SET created_by = created.client
        FROM (
            SELECT DISTINCT ON (change.owner, change.rtype) change.owner, change.rtype, request.client
            FROM request_change AS change JOIN request ON request.id = change.request_id
            WHERE change.action = 'create' AND request.client IS NOT NULL
            ORDER BY change.owner, change.rtype, change.id DESC
        ) AS created
        WHERE rrset.owner = created.owner AND rrset.rtype = created.rtype
        """
    )
    op.execute(
        """
        UPDATE rrset SET created_by = request.client FROM request
        WHERE rrset.created_by IS NULL AND request.id = rrset.last_request_id
        """
    )
    op.create_index(
        "ix_rrset_created_by",
        "rrset",
        ["created_by"],
        postgresql_where=sa.text("created_by IS NOT NULL AND \"values\" <> '[]'::jsonb"),
    )


def downgrade() -> None:
    op.drop_index("ix_rrset_created_by", table_name="rrset")
    op.drop_column("rrset", "created_by")
    op.drop_column("api_client", "changes_on_day")
    op.drop_column("api_client", "usage_day")
    op.drop_column("api_client", "max_changes_per_day")
    op.drop_column("api_client", "max_rrsets")
