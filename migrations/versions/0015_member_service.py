"""member service: complaints, visits, surveys, care records

Revision ID: 0015
Revises: 0014
Create Date: 2026-11-26 15:04:41.424523
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel

import portal.db


revision = '0015'
down_revision = '0014'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('service_settings_version',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('effective_from', sa.Date(), nullable=False),
    sa.Column('body', sa.Text(), nullable=False),
    sa.Column('note', sqlmodel.sql.sqltypes.AutoString(length=500), nullable=False),
    sa.Column('created_by_id', sa.Integer(), nullable=True),
    sa.Column('created_at', portal.db.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['created_by_id'], ['user_account.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('effective_from')
    )
    op.create_table('care_record',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('customer_id', sa.Uuid(), nullable=False),
    sa.Column('year', sa.Integer(), nullable=False),
    sa.Column('benefit', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('tier', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('given_on', sa.Date(), nullable=False),
    sa.Column('note_ct', sa.LargeBinary(), nullable=True),
    sa.Column('given_by_id', sa.Integer(), nullable=False),
    sa.Column('created_at', portal.db.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['customer_id'], ['customer_file.id'], ),
    sa.ForeignKeyConstraint(['given_by_id'], ['user_account.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('care_record', schema=None) as batch_op:
        batch_op.create_index('ix_care_record_customer_year', ['customer_id', 'year', 'benefit'], unique=False)
        batch_op.create_index('ix_care_record_year', ['year', 'benefit'], unique=False)

    op.create_table('complaint',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('customer_id', sa.Uuid(), nullable=False),
    sa.Column('channel', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('kind', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('content_ct', sa.LargeBinary(), nullable=True),
    sa.Column('promised_on', sa.Date(), nullable=False),
    sa.Column('status', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('cause', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=True),
    sa.Column('responsible', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
    sa.Column('passed_to', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
    sa.Column('reopen_count', sa.Integer(), nullable=False),
    sa.Column('recorded_month', sqlmodel.sql.sqltypes.AutoString(length=7), nullable=False),
    sa.Column('recorded_by_id', sa.Integer(), nullable=False),
    sa.Column('recorded_at', portal.db.UTCDateTime(), nullable=False),
    sa.Column('closed_at', portal.db.UTCDateTime(), nullable=True),
    sa.Column('days_to_close', sa.Integer(), nullable=True),
    sa.Column('updated_at', portal.db.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['customer_id'], ['customer_file.id'], ),
    sa.ForeignKeyConstraint(['recorded_by_id'], ['user_account.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('complaint', schema=None) as batch_op:
        batch_op.create_index('ix_complaint_customer', ['customer_id', 'id'], unique=False)
        batch_op.create_index('ix_complaint_month', ['recorded_month'], unique=False)
        batch_op.create_index('ix_complaint_status_promised', ['status', 'promised_on'], unique=False)

    op.create_table('complaint_step',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('complaint_id', sa.Integer(), nullable=False),
    sa.Column('step', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('detail', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('note_ct', sa.LargeBinary(), nullable=True),
    sa.Column('by_id', sa.Integer(), nullable=False),
    sa.Column('at', portal.db.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['by_id'], ['user_account.id'], ),
    sa.ForeignKeyConstraint(['complaint_id'], ['complaint.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('complaint_step', schema=None) as batch_op:
        batch_op.create_index('ix_complaint_step_complaint', ['complaint_id', 'id'], unique=False)

    op.create_table('member_visit',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('customer_id', sa.Uuid(), nullable=False),
    sa.Column('kind', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('reason', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('complaint_id', sa.Integer(), nullable=True),
    sa.Column('purchase_id', sa.Integer(), nullable=True),
    sa.Column('visited_on', sa.Date(), nullable=False),
    sa.Column('satisfaction', sa.Integer(), nullable=False),
    sa.Column('outcome_ct', sa.LargeBinary(), nullable=True),
    sa.Column('issues_ct', sa.LargeBinary(), nullable=True),
    sa.Column('passed_to', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
    sa.Column('answer_ct', sa.LargeBinary(), nullable=True),
    sa.Column('answered_at', portal.db.UTCDateTime(), nullable=True),
    sa.Column('answered_by_id', sa.Integer(), nullable=True),
    sa.Column('recorded_by_id', sa.Integer(), nullable=False),
    sa.Column('recorded_at', portal.db.UTCDateTime(), nullable=False),
    sa.CheckConstraint('satisfaction BETWEEN 1 AND 5', name='ck_member_visit_satisfaction'),
    sa.ForeignKeyConstraint(['answered_by_id'], ['user_account.id'], ),
    sa.ForeignKeyConstraint(['complaint_id'], ['complaint.id'], ),
    sa.ForeignKeyConstraint(['customer_id'], ['customer_file.id'], ),
    sa.ForeignKeyConstraint(['purchase_id'], ['purchase.id'], ),
    sa.ForeignKeyConstraint(['recorded_by_id'], ['user_account.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('member_visit', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_member_visit_complaint_id'), ['complaint_id'], unique=False)
        batch_op.create_index('ix_member_visit_customer', ['customer_id', 'visited_on'], unique=False)
        batch_op.create_index(batch_op.f('ix_member_visit_purchase_id'), ['purchase_id'], unique=False)

    op.create_table('survey_answer',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('visit_id', sa.Integer(), nullable=False),
    sa.Column('question_no', sa.Integer(), nullable=False),
    sa.Column('question', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('score', sa.Integer(), nullable=False),
    sa.CheckConstraint('score BETWEEN 1 AND 5', name='ck_survey_answer_score'),
    sa.ForeignKeyConstraint(['visit_id'], ['member_visit.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('survey_answer', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_survey_answer_visit_id'), ['visit_id'], unique=False)


    _steps_are_history()


def downgrade() -> None:
    _drop_steps_are_history()
    with op.batch_alter_table('survey_answer', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_survey_answer_visit_id'))

    op.drop_table('survey_answer')
    with op.batch_alter_table('member_visit', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_member_visit_purchase_id'))
        batch_op.drop_index('ix_member_visit_customer')
        batch_op.drop_index(batch_op.f('ix_member_visit_complaint_id'))

    op.drop_table('member_visit')
    with op.batch_alter_table('complaint_step', schema=None) as batch_op:
        batch_op.drop_index('ix_complaint_step_complaint')

    op.drop_table('complaint_step')
    with op.batch_alter_table('complaint', schema=None) as batch_op:
        batch_op.drop_index('ix_complaint_status_promised')
        batch_op.drop_index('ix_complaint_month')
        batch_op.drop_index('ix_complaint_customer')

    op.drop_table('complaint')
    with op.batch_alter_table('care_record', schema=None) as batch_op:
        batch_op.drop_index('ix_care_record_year')
        batch_op.drop_index('ix_care_record_customer_year')

    op.drop_table('care_record')
    op.drop_table('service_settings_version')


def _steps_are_history() -> None:
    # A complaint's steps are its history: the database refuses to delete one or to change
    # anything but its ciphertext (which `portal keys rotate` re-seals under a new key).
    cols = "complaint_id, step, detail, by_id, at"
    if op.get_bind().dialect.name == "sqlite":
        op.execute(f"""CREATE TRIGGER complaint_step_no_update BEFORE UPDATE OF {cols} ON complaint_step
            BEGIN SELECT RAISE(ABORT, 'complaint_step is append-only'); END""")
        op.execute("""CREATE TRIGGER complaint_step_no_delete BEFORE DELETE ON complaint_step
            BEGIN SELECT RAISE(ABORT, 'complaint_step is append-only'); END""")
        return
    op.execute("""CREATE FUNCTION complaint_step_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN RAISE EXCEPTION '% is append-only', TG_TABLE_NAME; END $$""")
    op.execute(f"""CREATE TRIGGER complaint_step_no_change BEFORE UPDATE OF {cols} OR DELETE ON complaint_step
        FOR EACH ROW EXECUTE FUNCTION complaint_step_append_only()""")
    op.execute("""CREATE TRIGGER complaint_step_no_truncate BEFORE TRUNCATE ON complaint_step
        FOR EACH STATEMENT EXECUTE FUNCTION complaint_step_append_only()""")


def _drop_steps_are_history() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.execute("DROP TRIGGER IF EXISTS complaint_step_no_update")
        op.execute("DROP TRIGGER IF EXISTS complaint_step_no_delete")
        return
    op.execute("DROP TRIGGER IF EXISTS complaint_step_no_change ON complaint_step")
    op.execute("DROP TRIGGER IF EXISTS complaint_step_no_truncate ON complaint_step")
    op.execute("DROP FUNCTION IF EXISTS complaint_step_append_only()")
