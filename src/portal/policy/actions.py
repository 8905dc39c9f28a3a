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
    # Personal data (privacy/): the privacy officer's duties are the auditor's (README, "Personal data")
    PRIVACY_REQUEST = "privacy.request"  # a file's privacy page; record erasure/correction requests
    PRIVACY_ERASE = "privacy.erase"  # the erasure queue; approve or refuse (a leader above the file)
    PRIVACY_REPORT = "privacy.report"  # the subject access report of one customer
    PRIVACY_RETENTION = "privacy.retention"  # the versioned retention setting (admin)
    # Member service (service/): complaints, follow-up visits and surveys, care records
    COMPLAINT_RECORD = "complaint.record"  # record a complaint on a member's file
    COMPLAINT_VIEW = "complaint.view"  # the complaints queue and a complaint with its history
    COMPLAINT_WORK = "complaint.work"  # investigate, propose, tell the member, record satisfaction
    COMPLAINT_ANALYSIS = "complaint.analysis"  # the member-service analysis (counts, no personal data)
    VISIT_VIEW = "visit.view"  # due visits; a member's service record (complaints, visits, care)
    VISIT_RECORD = "visit.record"  # record a follow-up visit (and survey), answer its issues
    CARE_VIEW = "care.view"  # what was given (care packages, birthday gifts) in the user's scope
    CARE_RECORD = "care.record"  # give a benefit within the tier's yearly allowance
    SERVICE_RULES = "servicerules.edit"  # the member-service settings (schedule, threshold, survey, allowances)
    # Reports (reports/): figures only, never personal data; scoped like member lists
    REPORT_VIEW = "report.view"  # the business reports: own clients (salespeople), units led (leaders)
    REPORT_EXPORT = "report.export"  # a report as CSV or XLSX (audited)
    REPORT_SEND = "report.send"  # a leader freezes and sends a unit's monthly report upward
    REPORT_AUDIT = "report.audit"  # the auditor's analytics of the audit log (no customer figures)
    # Member events (events/): the calendar, a leader's plan and events, staff registering and
    # checking members in (decided by the member's file), the post-event summary (no personal data)
    EVENT_VIEW = "event.view"  # the calendar and an event's page (its list scoped to one's members)
    EVENT_MANAGE = "event.manage"  # plan a year, add events, invite, record the cost (leaders, led units)
    EVENT_REGISTER = "event.register"  # register a member, cancel (own clients; customer service any)
    EVENT_CHECKIN = "event.checkin"  # check a member in, record their satisfaction
    EVENT_SUMMARY = "event.summary"  # attendance, satisfaction, cost, attendees' sales (leaders)
    # Sales on credit (credit/, catalogue/): the file's relations decide, like membership steps
    CATALOGUE_VIEW = "catalogue.view"  # the product catalogue and its versions
    CATALOGUE_EDIT = "catalogue.edit"  # a new version of a product (admin), audited
    CREDIT_VIEW = "credit.view"  # the credit section of a file: grant, limit, orders, ledger
    CREDIT_SELL = "credit.sell"  # sell on credit or cash on delivery; deliver; apply for an exception
    CREDIT_GRANT = "credit.grant"  # grant or revoke a customer's credit (a leader above the file)
    CREDIT_DECIDE = "credit.decide"  # approve or refuse an application (a leader above the file)
    CREDIT_TERMS = "credit.terms"  # new versions of the credit limits and periods (admin)
    RECEIVABLE_COLLECT = "receivable.collect"  # record a payment on an order
    RECEIVABLE_WRITE_OFF = "receivable.write_off"  # write off a bad debt (a leader above the file)
    RECEIVABLE_BOARD = "receivable.board"  # the overdue board (own customers; a leader's units)
    LIABILITY_VIEW = "liability.view"  # liabilities of people in the leader's units
    LIABILITY_EXPORT = "liability.export"  # the liability report as CSV or XLSX
    LIABILITY_SETTLE = "liability.settle"  # record a settlement of a liability (a leader above the person)
    # Messages to members (messages/, consent/)
    MESSAGES_CONSENT = "messages.consent"  # a file's consent and contact preferences: see, record, withdraw
    MESSAGES_OUTBOX = "messages.outbox"  # the outbox page (masked addresses), within scope
    MESSAGES_CARE = "messages.care"  # preview and send the monthly care message to members in scope
    # Coupons (membership/coupons.py, seed 001): campaigns to the members in reach; used at the till
    # through member.purchase / member.pos; a member's coupons show with member.view
    COUPON_VIEW = "coupon.view"  # the coupons page: campaigns in reach and what became of them
    COUPON_ISSUE = "coupon.issue"  # issue a campaign to members of some tiers (leaders: their units)
    COUPON_VOID = "coupon.void"  # withdraw an unused coupon, with a reason

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
