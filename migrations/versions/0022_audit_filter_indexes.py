"""audit log filters: an index per filter column, ending in seq (newest-first pages)

Revision ID: 0022
Revises: 0020
Create Date: 2026-11-26 16:00:00

The auditor's log is filtered by user, action or outcome and read newest first (ORDER BY seq
DESC, keyset by seq): (column, seq) indexes answer each filter and its paging from the index,
and let the action menu skip through the distinct actions instead of reading every entry.
"""
from alembic import op


revision = '0022'
down_revision = '0020'
branch_labels = None
depends_on = None

INDEXES = (
    # replaces ix_audit_at (at): a date range's lowest and highest seq from the index alone
    ("ix_audit_at_seq", ["at", "seq"]),
    ("ix_audit_username", ["actor_username", "seq"]),
    ("ix_audit_username_outcome", ["actor_username", "outcome", "seq"]),  # a user's refusals
    ("ix_audit_action", ["action", "seq"]),
    ("ix_audit_outcome", ["outcome", "seq"]),
)


def upgrade() -> None:
    for name, columns in INDEXES:
        op.create_index(name, "audit_event", columns, unique=False)
    op.drop_index("ix_audit_at", table_name="audit_event")


def downgrade() -> None:
    op.create_index("ix_audit_at", "audit_event", ["at"], unique=False)
    for name, _columns in INDEXES:
        op.drop_index(name, table_name="audit_event")
