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
    ADMIN_TERMINALS = "admin.terminals"  # issue and revoke POS terminal API keys
    # Membership programme (on a customer file, decided by the same relations as the file)
    MEMBER_VIEW = "member.view"  # membership section: tier, cards, points, ledgers, purchases
    MEMBER_PURCHASE = "member.purchase"  # record a purchase, return one
    MEMBER_REDEEM = "member.redeem"  # redeem points from the catalogue
    MEMBER_STORED_VALUE = "member.stored_value"  # recharge, spend, refund stored value
    MEMBER_ADJUST = "member.adjust"  # adjust points or stored value with a reason (leaders)
    MEMBER_CLAIM = "member.claim"  # missed points by receipt number (customer service)
    MEMBER_APPLY = "member.apply"  # apply for membership for a client
    MEMBER_REVIEW = "member.review"  # approve or reject applications (customer service)
    MEMBER_TIER = "member.tier"  # a leader's manual tier, floor or ceiling (platinum too)
    MEMBER_EXCEPTION = "member.exception"  # a leader waives the joining condition of an application
    MEMBER_LISTS = "member.lists"  # due-to-expire and birthdays-this-week lists
    CARD_MANAGE = "card.manage"  # on a file: freeze/unfreeze, report loss, replace, renew, set PIN
    CARD_CANCEL = "card.cancel"  # cancel and restore (leaders)
    # The customer-service desk's own actions (customer service only, on any member's card): a
    # masked look-up, and freezing or reporting a card lost. Nothing else on a card — no PIN,
    # renewal, replacement, stored value, points or purchases — and no customer file route.
    SERVICE_LOOKUP = "service.lookup"  # the desk and its masked card look-up
    SERVICE_CARD = "service.card"  # report a card lost, freeze or unfreeze it, at the desk
    PROGRAMME_VIEW = "programme.view"  # the catalogue and the programme's figures
    PROGRAMME_EDIT = "programme.edit"  # new versions of the programme's figures (admin)
    MEMBER_POS = "member.pos"  # a POS terminal's API calls, within its unit
    # Penalties for leaking or reselling files (seed 000): the "owner" is the person penalised
    PENALTY_RECORD = "penalty.record"  # a leader above the person records one, with evidence
    PENALTY_VIEW = "penalty.view"  # leaders above the person, auditors
    # Accounts (accounts/setup.py, accounts/approvals.py)
    ADMIN_PASSWORD = "admin.password"  # reset someone's password: a one-time set-up code
    ACCOUNT_APPROVE = "account.approve"  # approve a change that gives someone reach over files
    # Messages to members (messages/, consent/)
    MESSAGES_CONSENT = "messages.consent"  # a file's consent and contact preferences: see, record, withdraw
    MESSAGES_OUTBOX = "messages.outbox"  # the outbox page (masked addresses), within scope
    MESSAGES_CARE = "messages.care"  # preview and send the monthly care message to members in scope

    @property
    def obj(self) -> str:
        return self.value.split(".", 1)[0]

    @property
    def act(self) -> str:
        return self.value.split(".", 1)[1]


class Relation(StrEnum):
    """How a user stands to an object. "any" in a policy line matches every relation."""

    OWN = "own"        # the user owns the file
    LED = "led"        # the file's unit is within a unit the user leads (or a terminal serves)
    GRANTED = "granted"            # an active, approved grant to view
    GRANTED_EDIT = "granted_edit"  # an active, approved grant to view and edit
    ANY = "any"        # no relation needed (e.g. creating a new file, the audit log)
