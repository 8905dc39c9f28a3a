"""exports: the files of an export frozen at request time; rows delivered beside rows requested

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-26 11:50:00
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel


revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('export_item',
    sa.Column('export_id', sa.Integer(), nullable=False),
    sa.Column('customer_id', sa.Uuid(), nullable=False),
    sa.ForeignKeyConstraint(['export_id'], ['export_record.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['customer_id'], ['customer_file.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('export_id', 'customer_id')
    )
    with op.batch_alter_table('export_record', schema=None) as batch_op:
        batch_op.add_column(sa.Column('rows_delivered', sa.Integer(), nullable=True))
    # Exports delivered before this revision delivered what they counted.
    op.execute("UPDATE export_record SET rows_delivered = \"rows\" WHERE sha256 <> ''")
    # An export still waiting (or approved, not downloaded) has no frozen set of files to deliver:
    # it expires and is requested again, rather than delivering whatever the query finds today.
    op.execute("UPDATE export_record SET status = 'expired', "
               "decision_note = 'Expired by an upgrade: request the export again.' "
               "WHERE status IN ('pending', 'approved')")


def downgrade() -> None:
    with op.batch_alter_table('export_record', schema=None) as batch_op:
        batch_op.drop_column('rows_delivered')
    op.drop_table('export_item')
