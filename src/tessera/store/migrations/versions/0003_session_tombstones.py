"""Session tombstones: an ended session keeps its row with ``terminated_at`` set until pruned

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-28 12:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None

_LIVE = sa.text("terminated_at IS NULL")
_ENDED = sa.text("terminated_at IS NOT NULL")


def upgrade() -> None:
    # Adding a nullable column and indexes needs no table rebuild on SQLite (batch mode stays in place).
    with op.batch_alter_table('sessions', schema=None) as batch_op:
        batch_op.add_column(sa.Column('terminated_at', sa.BigInteger(), nullable=True))
        # Listing by user only asks for live sessions: the index leaves tombstones out.
        batch_op.drop_index('ix_sessions_user_id_created_at')
        batch_op.create_index('ix_sessions_user_id_created_at', ['user_id', 'created_at'], unique=False,
                              sqlite_where=_LIVE, postgresql_where=_LIVE)
        batch_op.create_index('ix_sessions_terminated_at', ['terminated_at'], unique=False,
                              sqlite_where=_ENDED, postgresql_where=_ENDED)


def downgrade() -> None:
    # Tombstones were ended sessions: without the column they would look live again.
    op.execute(sa.text("DELETE FROM sessions WHERE terminated_at IS NOT NULL"))
    with op.batch_alter_table('sessions', schema=None) as batch_op:
        batch_op.drop_index('ix_sessions_terminated_at')
        batch_op.drop_index('ix_sessions_user_id_created_at')
        batch_op.create_index('ix_sessions_user_id_created_at', ['user_id', 'created_at'], unique=False)
        batch_op.drop_column('terminated_at')
