"""The API's request budgets, shared by every replica: one row per caller.

The generic cell rate algorithm in one column: `tat`, the theoretical arrival time of the
caller's next request. A caller is a verified identity (business and subject) or, unverified, a
client address; a row whose `tat` has passed is a full budget, so such rows are pruned without
changing anyone's budget. UNLOGGED: budgets are not worth WAL (a crash of Postgres resets them,
which no client can cause).

Revision ID: 0011_api_rate_limits
Revises: 0010_revoked_tokens
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0011_api_rate_limits"
down_revision: str | None = "0010_revoked_tokens"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute(
        "CREATE UNLOGGED TABLE api_rate_limits ("
        " key varchar(300) CONSTRAINT pk_api_rate_limits PRIMARY KEY,"
        " tat timestamptz NOT NULL)"
    )


def downgrade() -> None:
    op.drop_table("api_rate_limits")
