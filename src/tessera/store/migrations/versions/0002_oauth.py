"""OAuth: machine keys and secrets, access tokens, assertion IDs, signing keys

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28 02:33:19.321178
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('oauth_assertion_ids',
    sa.Column('issuer', sa.String(length=200), nullable=False),
    sa.Column('jti', sa.String(length=200), nullable=False),
    sa.Column('expires_at', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('issuer', 'jti', name=op.f('pk_oauth_assertion_ids'))
    )
    with op.batch_alter_table('oauth_assertion_ids', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_oauth_assertion_ids_expires_at'), ['expires_at'], unique=False)

    op.create_table('signing_keys',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('algorithm', sa.String(length=10), nullable=False),
    sa.Column('private_key', sa.Text(), nullable=False),
    sa.Column('public_jwk', sa.Text(), nullable=False),
    sa.Column('created_at', sa.BigInteger(), nullable=False),
    sa.Column('retired_at', sa.BigInteger(), nullable=True),
    sa.Column('published_until', sa.BigInteger(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_signing_keys'))
    )
    op.create_table('machine_keys',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('user_id', sa.String(length=200), nullable=False),
    sa.Column('public_key', sa.Text(), nullable=False),
    sa.Column('expires_at', sa.BigInteger(), nullable=False),
    sa.Column('created_at', sa.BigInteger(), nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_machine_keys_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_machine_keys'))
    )
    with op.batch_alter_table('machine_keys', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_machine_keys_user_id'), ['user_id'], unique=False)

    op.create_table('oauth_access_tokens',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('token_hash', sa.LargeBinary(length=32), nullable=True),
    sa.Column('user_id', sa.String(length=200), nullable=False),
    sa.Column('client_id', sa.String(length=200), nullable=False),
    sa.Column('format', sa.String(length=8), nullable=False),
    sa.Column('scopes', sa.Text(), nullable=False),
    sa.Column('credential', sa.String(length=60), nullable=False),
    sa.Column('created_at', sa.BigInteger(), nullable=False),
    sa.Column('expires_at', sa.BigInteger(), nullable=False),
    sa.Column('revoked_at', sa.BigInteger(), nullable=True),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_oauth_access_tokens_user_id_users'),
                            ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_oauth_access_tokens')),
    sa.UniqueConstraint('token_hash', name=op.f('uq_oauth_access_tokens_token_hash'))
    )
    with op.batch_alter_table('oauth_access_tokens', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_oauth_access_tokens_expires_at'), ['expires_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_oauth_access_tokens_user_id'), ['user_id'], unique=False)
        batch_op.create_index('ix_oauth_access_tokens_user_id_credential', ['user_id', 'credential'], unique=False)

    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.add_column(sa.Column('secret_hash', sa.LargeBinary(length=32), nullable=True))



def downgrade() -> None:
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.drop_column('secret_hash')

    with op.batch_alter_table('oauth_access_tokens', schema=None) as batch_op:
        batch_op.drop_index('ix_oauth_access_tokens_user_id_credential')
        batch_op.drop_index(batch_op.f('ix_oauth_access_tokens_user_id'))
        batch_op.drop_index(batch_op.f('ix_oauth_access_tokens_expires_at'))

    op.drop_table('oauth_access_tokens')
    with op.batch_alter_table('machine_keys', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_machine_keys_user_id'))

    op.drop_table('machine_keys')
    op.drop_table('signing_keys')
    with op.batch_alter_table('oauth_assertion_ids', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_oauth_assertion_ids_expires_at'))

    op.drop_table('oauth_assertion_ids')
