"""customer_file_tally: files per (owner, unit path), the home page's files figure

Revision ID: 0038
Revises: 0037
Create Date: 2026-11-28 01:20:00

Filled from the files (INSERT ... SELECT: the rows stay in the database); from then on kept in
the transaction that creates or moves a file (portal.customers.tally).
"""
import sqlalchemy as sa
from alembic import op


revision = '0038'
down_revision = '0037'
branch_labels = None
depends_on = None

PATH = sa.String(255).with_variant(sa.String(255, collation="C"), "postgresql")


def upgrade() -> None:
    op.create_table('customer_file_tally',
    sa.Column('owner_id', sa.Integer(), nullable=False),
    sa.Column('unit_path', PATH, nullable=False),
    sa.Column('files', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('owner_id', 'unit_path')
    )
    op.create_index('ix_customer_file_tally_unit', 'customer_file_tally', ['unit_path'], unique=False)
    op.execute("INSERT INTO customer_file_tally (owner_id, unit_path, files) "
               "SELECT owner_id, unit_path, count(*) FROM customer_file GROUP BY owner_id, unit_path")


def downgrade() -> None:
    op.drop_index('ix_customer_file_tally_unit', table_name='customer_file_tally')
    op.drop_table('customer_file_tally')
