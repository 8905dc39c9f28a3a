"""Every table, imported once so SQLModel's metadata is complete (Alembic and tests use it)."""
from sqlmodel import SQLModel

from .access.models import AccessRequest  # noqa: F401
from .accounts.mfa_models import RecoveryCode  # noqa: F401
from .accounts.models import LoginAttempt, User, WebSession  # noqa: F401
from .accounts.setup_models import AccountChange, AccountSetup, PasswordHelp  # noqa: F401
from .audit.models import AuditCheckpoint, AuditEvent, AuditHead  # noqa: F401
from .catalogue.models import ProductVersion  # noqa: F401
from .credit.models import (  # noqa: F401
    CreditApplication, CreditGrant, CreditOrder, CreditTermsVersion, Liability, LiabilitySettlement,
    ReceivableEntry, ReminderRun,
)
from .customers.models import CustomerFile, FileNumberSequence  # noqa: F401
from .events.models import Event, EventInvitation, EventPlan, EventRegistration  # noqa: F401
from .exports.models import ExportItem, ExportRecord  # noqa: F401
from .inbox.models import Notice  # noqa: F401
from .membership.models import (  # noqa: F401
    ApiIdempotency, CardAccount, CardNumberSequence, FormSubmission, MemberCard, MemberEvent, Membership,
    MembershipApplication, PointsEntryRow, PosTerminal, ProgrammeVersion, Purchase, PurchaseFollowUp, PurchaseLineRow,
    Redemption, StoredValueEntryRow,
)
from .org.models import OrgUnit  # noqa: F401
from .penalties.models import Penalty  # noqa: F401
from .consent.models import ConsentRecord  # noqa: F401
from .messages.models import MemberContact, MessageSettingsVersion, OutboxMessage  # noqa: F401
from .pos.refusals import ApiRefusalWindow  # noqa: F401
from .privacy.models import CorrectionRequest, ErasureRequest, RetentionVersion  # noqa: F401
from .subject_keys import CustomerKey  # noqa: F401
from .service.models import (  # noqa: F401
    CareRecord, Complaint, ComplaintStep, MemberVisit, ServiceSettingsVersion, SurveyAnswer,
)
from .reports.models import ReportFlow, ReportMember, ReportProduct, SentMonthlyReport  # noqa: F401

metadata = SQLModel.metadata
