"""birthdays today: a truncated blind index of the birthday's month and day

Revision ID: 0037
Revises: 0036
Create Date: 2026-11-27 15:30:00

The column is filled from the decrypted birthday, which needs the key file: as 0011 did, the
migration adds the column and its indexes only, and `portal customers reindex` fills it
(`portal db upgrade` runs it right after migrating). Until then the home page's count reads the
files without the index as candidates (ix_customer_birthday_unindexed), so it stays right.
"""
from alembic import op
import sqlalchemy as sa


revision = '0037'
down_revision = '0036'
branch_labels = None
depends_on = None

INDEXED = "birthday_md_bidx IS NOT NULL"
UNINDEXED = "birthday_md_bidx IS NULL AND birthday_ct IS NOT NULL AND erased_at IS NULL"


def upgrade() -> None:
    with op.batch_alter_table("customer_file") as batch:
        batch.add_column(sa.Column("birthday_md_bidx", sa.String(length=8), nullable=True))
    # Partial: the files without a birthday (NULL) are left out, and a search for NULL cannot
    # walk it instead of ix_customer_birthday_unindexed.
    op.create_index("ix_customer_birthday_md", "customer_file", ["birthday_md_bidx", "id"],
                    sqlite_where=sa.text(INDEXED), postgresql_where=sa.text(INDEXED))
    op.create_index("ix_customer_birthday_unindexed", "customer_file", ["id"],
                    sqlite_where=sa.text(UNINDEXED), postgresql_where=sa.text(UNINDEXED))


def downgrade() -> None:
    op.drop_index("ix_customer_birthday_unindexed", table_name="customer_file")
    op.drop_index("ix_customer_birthday_md", table_name="customer_file")
    with op.batch_alter_table("customer_file") as batch:
        batch.drop_column("birthday_md_bidx")
