"""Every table, imported once so SQLModel's metadata is complete (Alembic and tests use it)."""
from sqlmodel import SQLModel

from .accounts.models import LoginAttempt, User, WebSession  # noqa: F401
from .audit.models import AuditEvent, AuditHead  # noqa: F401
from .customers.models import CustomerFile, FileNumberSequence  # noqa: F401
from .org.models import OrgUnit  # noqa: F401

metadata = SQLModel.metadata
