"""Every action the portal knows. A route without one is denied."""
from __future__ import annotations

from enum import StrEnum


class Action(StrEnum):
    # (object, act) pairs as Casbin sees them: "customer.view" -> obj "customer", act "view".
    CUSTOMER_LIST = "customer.list"
    CUSTOMER_VIEW = "customer.view"
    CUSTOMER_CREATE = "customer.create"
    CUSTOMER_EDIT = "customer.edit"
    CUSTOMER_EXPORT = "customer.export"
    CUSTOMER_REASSIGN = "customer.reassign"
    AUDIT_VIEW = "audit.view"
    AUDIT_EXPORT = "audit.export"
    ADMIN_USERS = "admin.users"
    ADMIN_UNITS = "admin.units"
    ACCOUNT_SELF = "account.self"  # one's own preferences, sign-out, inbox, second factor
    ACCESS_REQUEST = "access.request"
    ACCESS_DECIDE = "access.decide"  # approve, deny or revoke a grant on a file
    EXPORT_DECIDE = "export.decide"  # approve a large export
    ADMIN_MFA = "admin.mfa"  # reset someone's second factor

    @property
    def obj(self) -> str:
        return self.value.split(".", 1)[0]

    @property
    def act(self) -> str:
        return self.value.split(".", 1)[1]


class Relation(StrEnum):
    """How a user stands to an object. "any" in a policy line matches every relation."""

    OWN = "own"        # the user owns the file
    LED = "led"        # the file's unit is within a unit the user leads
    GRANTED = "granted"            # an active, approved grant to view
    GRANTED_EDIT = "granted_edit"  # an active, approved grant to view and edit
    ANY = "any"        # no relation needed (e.g. creating a new file, the audit log)
