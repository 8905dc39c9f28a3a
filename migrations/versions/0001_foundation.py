"""foundation: org, accounts, customer files, audit log

Revision ID: 0001
Revises: 
Create Date: 2026-11-22 21:46:35.865211
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel

import portal.db


revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('audit_event',
    sa.Column('seq', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('at', portal.db.UTCDateTime(), nullable=False),
    sa.Column('actor_id', sa.Integer(), nullable=True),
    sa.Column('actor_username', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('actor_role', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('action', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('object_type', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('object_id', sqlmodel.sql.sqltypes.AutoString(length=255), nullable=False),
    sa.Column('fields', sqlmodel.sql.sqltypes.AutoString(length=255), nullable=False),
    sa.Column('outcome', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('reason', sqlmodel.sql.sqltypes.AutoString(length=500), nullable=False),
    sa.Column('detail', sqlmodel.sql.sqltypes.AutoString(length=1000), nullable=False),
    sa.Column('grant_id', sa.Integer(), nullable=True),
    sa.Column('client_addr', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('prev_hash', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('hash', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.PrimaryKeyConstraint('seq')
    )
    with op.batch_alter_table('audit_event', schema=None) as batch_op:
        batch_op.create_index('ix_audit_actor', ['actor_id', 'seq'], unique=False)
        batch_op.create_index('ix_audit_at', ['at'], unique=False)
        batch_op.create_index('ix_audit_object', ['object_id', 'seq'], unique=False)

    op.create_table('audit_head',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('seq', sa.Integer(), nullable=False),
    sa.Column('hash', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_table('file_number_sequence',
    sa.Column('region_code', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('next_seq', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('region_code')
    )
    op.create_table('login_attempt',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('username', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('client_addr', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('at', portal.db.UTCDateTime(), nullable=False),
    sa.Column('success', sa.Boolean(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('login_attempt', schema=None) as batch_op:
        batch_op.create_index('ix_login_attempt_addr_at', ['client_addr', 'at'], unique=False)
        batch_op.create_index('ix_login_attempt_username_at', ['username', 'at'], unique=False)

    op.create_table('org_unit',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('code', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('name', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
    sa.Column('parent_id', sa.Integer(), nullable=True),
    sa.Column('path', sa.String(length=255).with_variant(sa.String(length=255, collation='C'), 'postgresql'), nullable=False),
    sa.Column('depth', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['parent_id'], ['org_unit.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('code')
    )
    with op.batch_alter_table('org_unit', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_org_unit_path'), ['path'], unique=False)

    op.create_table('user_account',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('username', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('display_name', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
    sa.Column('password_hash', sqlmodel.sql.sqltypes.AutoString(length=255), nullable=False),
    sa.Column('role', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('unit_id', sa.Integer(), nullable=False),
    sa.Column('locale', sqlmodel.sql.sqltypes.AutoString(length=8), nullable=True),
    sa.Column('timezone', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
    sa.Column('is_active', sa.Boolean(), nullable=False),
    sa.Column('created_at', portal.db.UTCDateTime(), nullable=False),
    sa.Column('disabled_at', portal.db.UTCDateTime(), nullable=True),
    sa.ForeignKeyConstraint(['unit_id'], ['org_unit.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('username')
    )
    with op.batch_alter_table('user_account', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_user_account_unit_id'), ['unit_id'], unique=False)

    op.create_table('customer_file',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('file_no', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('category', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('gender', sqlmodel.sql.sqltypes.AutoString(length=1), nullable=False),
    sa.Column('owner_id', sa.Integer(), nullable=False),
    sa.Column('unit_id', sa.Integer(), nullable=False),
    sa.Column('unit_path', sa.String(length=255).with_variant(sa.String(length=255, collation='C'), 'postgresql'), nullable=False),
    sa.Column('name_ct', sa.LargeBinary(), nullable=True),
    sa.Column('mobile_ct', sa.LargeBinary(), nullable=True),
    sa.Column('id_number_ct', sa.LargeBinary(), nullable=True),
    sa.Column('birthday_ct', sa.LargeBinary(), nullable=True),
    sa.Column('address_ct', sa.LargeBinary(), nullable=True),
    sa.Column('employer_ct', sa.LargeBinary(), nullable=True),
    sa.Column('position_ct', sa.LargeBinary(), nullable=True),
    sa.Column('notes_ct', sa.LargeBinary(), nullable=True),
    sa.Column('mobile_bidx', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
    sa.Column('id_number_bidx', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
    sa.Column('key_id', sa.Integer(), nullable=False),
    sa.Column('created_at', portal.db.UTCDateTime(), nullable=False),
    sa.Column('updated_at', portal.db.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['owner_id'], ['user_account.id'], ),
    sa.ForeignKeyConstraint(['unit_id'], ['org_unit.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('file_no')
    )
    with op.batch_alter_table('customer_file', schema=None) as batch_op:
        batch_op.create_index('ix_customer_created', ['created_at', 'id'], unique=False)
        batch_op.create_index(batch_op.f('ix_customer_file_key_id'), ['key_id'], unique=False)
        batch_op.create_index('ix_customer_id_number_bidx', ['id_number_bidx'], unique=False)
        batch_op.create_index('ix_customer_mobile_bidx', ['mobile_bidx'], unique=False)
        batch_op.create_index('ix_customer_owner_created', ['owner_id', 'created_at', 'id'], unique=False)
        batch_op.create_index('ix_customer_unitpath_created', ['unit_path', 'created_at', 'id'], unique=False)

    op.create_table('web_session',
    sa.Column('id', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('created_at', portal.db.UTCDateTime(), nullable=False),
    sa.Column('last_seen_at', portal.db.UTCDateTime(), nullable=False),
    sa.Column('client_addr', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['user_account.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('web_session', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_web_session_user_id'), ['user_id'], unique=False)

    op.execute("INSERT INTO audit_head (id, seq, hash) VALUES (1, 0, '" + "0" * 64 + "')")
    # The audit log is append-only: the database itself refuses UPDATE, DELETE and TRUNCATE.
    if op.get_bind().dialect.name == "sqlite":
        for verb in ("UPDATE", "DELETE"):
            op.execute(f"""CREATE TRIGGER audit_event_no_{verb.lower()} BEFORE {verb} ON audit_event
                BEGIN SELECT RAISE(ABORT, 'audit_event is append-only'); END""")
        op.execute("""CREATE TRIGGER audit_head_no_delete BEFORE DELETE ON audit_head
            BEGIN SELECT RAISE(ABORT, 'audit_head cannot be deleted'); END""")
    else:
        op.execute("""CREATE FUNCTION audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN RAISE EXCEPTION 'audit_event is append-only'; END $$""")
        op.execute("""CREATE TRIGGER audit_event_no_change BEFORE UPDATE OR DELETE ON audit_event
            FOR EACH ROW EXECUTE FUNCTION audit_append_only()""")
        op.execute("""CREATE TRIGGER audit_event_no_truncate BEFORE TRUNCATE ON audit_event
            FOR EACH STATEMENT EXECUTE FUNCTION audit_append_only()""")
        op.execute("""CREATE TRIGGER audit_head_no_delete BEFORE DELETE OR TRUNCATE ON audit_head
            FOR EACH STATEMENT EXECUTE FUNCTION audit_append_only()""")


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        for name in ("audit_event_no_update", "audit_event_no_delete", "audit_head_no_delete"):
            op.execute(f"DROP TRIGGER IF EXISTS {name}")
    else:
        op.execute("DROP TRIGGER IF EXISTS audit_event_no_change ON audit_event")
        op.execute("DROP TRIGGER IF EXISTS audit_event_no_truncate ON audit_event")
        op.execute("DROP TRIGGER IF EXISTS audit_head_no_delete ON audit_head")
        op.execute("DROP FUNCTION IF EXISTS audit_append_only()")
    with op.batch_alter_table('web_session', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_web_session_user_id'))

    op.drop_table('web_session')
    with op.batch_alter_table('customer_file', schema=None) as batch_op:
        batch_op.drop_index('ix_customer_unitpath_created')
        batch_op.drop_index('ix_customer_owner_created')
        batch_op.drop_index('ix_customer_mobile_bidx')
        batch_op.drop_index('ix_customer_id_number_bidx')
        batch_op.drop_index(batch_op.f('ix_customer_file_key_id'))
        batch_op.drop_index('ix_customer_created')

    op.drop_table('customer_file')
    with op.batch_alter_table('user_account', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_user_account_unit_id'))

    op.drop_table('user_account')
    with op.batch_alter_table('org_unit', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_org_unit_path'))

    op.drop_table('org_unit')
    with op.batch_alter_table('login_attempt', schema=None) as batch_op:
        batch_op.drop_index('ix_login_attempt_username_at')
        batch_op.drop_index('ix_login_attempt_addr_at')

    op.drop_table('login_attempt')
    op.drop_table('file_number_sequence')
    op.drop_table('audit_head')
    with op.batch_alter_table('audit_event', schema=None) as batch_op:
        batch_op.drop_index('ix_audit_object')
        batch_op.drop_index('ix_audit_at')
        batch_op.drop_index('ix_audit_actor')

    op.drop_table('audit_event')
