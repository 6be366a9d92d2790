"""Revoked tokens: the denylist every request and stream is checked against.

A row names a token by its business and `jti`: an admin revokes tokens of their own business
only (the same jti under another business is another token). A row can go once every token it
could name has expired (`expires_at`: revocation time + the maximum token lifetime + skew).

Revision ID: 0010_revoked_tokens
Revises: 0009_whatsapp_delivery
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010_revoked_tokens"
down_revision: str | None = "0009_whatsapp_delivery"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "revoked_tokens",
        sa.Column(
            "business_id",
            sa.BigInteger(),
            sa.ForeignKey("businesses.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("jti", sa.String(200), primary_key=True),
        sa.Column("revoked_by", sa.String(200), nullable=False),
        sa.Column(
            "revoked_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_revoked_tokens_expires_at", "revoked_tokens", ["expires_at"])


def downgrade() -> None:
    op.drop_index("ix_revoked_tokens_expires_at", table_name="revoked_tokens")
    op.drop_table("revoked_tokens")
