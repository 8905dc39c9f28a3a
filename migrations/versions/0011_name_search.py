"""search by name: blind indexes of the full name, the surname and the mobile's last four digits

Revision ID: 0011
Revises: 0009
Create Date: 2026-11-24 09:00:00

The columns are filled from the decrypted values, which needs the key file: a migration sees
only the database, so it adds the columns and indexes, and `portal customers reindex` fills
them (`portal db upgrade` runs it right after migrating, with the key file it names).
"""
from alembic import op
import sqlalchemy as sa


revision = '0011'
down_revision = '0009'
branch_labels = None
depends_on = None

INDEXES = (
    ("ix_customer_name_bidx", ["name_bidx"]),
    ("ix_customer_surname_owner", ["surname_bidx", "owner_id", "created_at", "id"]),
    ("ix_customer_surname_unitpath", ["surname_bidx", "unit_path", "created_at", "id"]),
    ("ix_customer_tail_owner", ["mobile_tail_bidx", "owner_id", "created_at", "id"]),
    ("ix_customer_tail_unitpath", ["mobile_tail_bidx", "unit_path", "created_at", "id"]),
)


def upgrade() -> None:
    with op.batch_alter_table("customer_file") as batch:
        batch.add_column(sa.Column("name_bidx", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("surname_bidx", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("mobile_tail_bidx", sa.String(length=8), nullable=True))
    for name, cols in INDEXES:
        op.create_index(name, "customer_file", cols)


def downgrade() -> None:
    for name, _cols in INDEXES:
        op.drop_index(name, table_name="customer_file")
    with op.batch_alter_table("customer_file") as batch:
        batch.drop_column("mobile_tail_bidx")
        batch.drop_column("surname_bidx")
        batch.drop_column("name_bidx")
