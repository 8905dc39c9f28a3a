"""Audit entries of everyday work in words: member service, credit, events, messages, privacy,
reports, settings and account set-up (`wording.py` holds files, access, accounts and membership).

One table: an action's detail shapes (a regular expression each, tried in order) and the sentence
for each; the last shape of an action may be None, its sentence for any other detail (which is
then shown as stored). Named groups become the sentence's values: `<x>_fen` groups are shown in
yuan as `x`, and groups named in `CODE_WORDS` are codes said in words. `id` is the entry's object.
"""
from __future__ import annotations

import re

from .wording import Phrase, Words, _, yuan

# Codes that details carry -> the words the pages already use for them.
CODE_WORDS: dict[str, dict[str, str]] = {
    "status": {"recorded": _("Recorded"), "reopened": _("Reopened"), "investigated": _("Investigated"),
               "proposed": _("Resolution proposed"), "told": _("Member told"), "closed": _("Closed"),
               "approved": _("approved"), "refused": _("refused"), "rejected": _("rejected")},
    "benefit": {"care_package": _("Care package"), "birthday_gift": _("Birthday gift")},
    "visit": {"phone": _("Phone"), "survey": _("Survey"), "interview": _("Interview")},
    "terms": {"credit": _("on credit"), "cod": _("cash on delivery")},
    "channel": {"sms": _("SMS"), "email": _("E-mail")},
    "purpose": {"service": _("Service messages"), "marketing": _("Marketing")},
    "tier": {"regular": _("regular"), "silver": _("silver"), "gold": _("gold"), "platinum": _("platinum")},
    "cause": {"single_purchase": _("single purchase"), "cumulative": _("cumulative spend"),
              "application": _("application"), "import": _("imported")},
}
CODE_WORDS["old"] = CODE_WORDS["tier"]

_N = r"(?P<n>\d+)"
RULES: dict[str, tuple[tuple[str | None, str], ...]] = {
    # member service
    "complaint.record": ((r"file (?P<file>.+)", _("Recorded complaint #%(id)s about file %(file)s")),),
    "complaint.work": ((r"\w+ -> (?P<status>\w+) \(file (?P<file>[^)]+)\)",
                        _("Worked on complaint #%(id)s of file %(file)s: %(status)s")),),
    "complaint.view": ((r"\w+: " + _N + " rows", _("Read the complaints (%(n)s rows)")),
                       (r"file (?P<file>.+)", _("Read complaint #%(id)s of file %(file)s")),
                       (None, _("Read the complaints"))),
    "complaint.analysis": ((_N + r" complaints, (?P<v>\d+) visits",
                            _("Read the complaint analysis (%(n)s complaints, %(v)s visits)")),
                           (None, _("Read the complaint analysis"))),
    "visit.record": ((r"visit (?P<v>\d+) issues answered", _("Recorded the answers to visit #%(v)s of file %(id)s")),
                     (r"visit (?P<v>\d+) (?P<visit>\w+)", _("Recorded visit #%(v)s to file %(id)s (%(visit)s)")),
                     (None, _("Recorded a visit to file %(id)s"))),
    "visit.view": ((_N + " rows", _("Read the visits due (%(n)s rows)")),
                   (r"member service record", _("Read the member service record of file %(id)s")),
                   (None, _("Read the visits"))),
    "care.record": ((r"(?P<benefit>\w+) (?P<year>\d{4}) \((?P<tier>\w+)\)",
                     _("Recorded %(benefit)s for file %(id)s (%(year)s, %(tier)s)")),
                    (None, _("Recorded care given to file %(id)s"))),
    "care.view": ((r"(?P<year>\d{4}): " + _N + " rows", _("Read the care given in %(year)s (%(n)s rows)")),
                  (None, _("Read the care given"))),
    "servicerules.edit": ((r"from (?P<day>\S+)", _("Changed the member service settings from %(day)s")),),
    # sales on credit
    "credit.grant": ((r"grant (?P<g>\d+)", _("Granted credit to file %(id)s (grant #%(g)s)")),),
    "credit.revoke": ((r"grant (?P<g>\d+)", _("Revoked credit grant #%(g)s of file %(id)s")),),
    "credit.apply": ((r"application (?P<a>\d+) extra (?P<boxes>\d+) boxes (?P<days>\d+) days",
                      _("Applied for more credit for file %(id)s (application #%(a)s: %(boxes)s boxes, %(days)s days)")),
                     (r"application (?P<a>\d+) discount (?P<product>\S+) (?P<price_fen>\d+) fen",
                      _("Applied for a special price for file %(id)s (application #%(a)s: %(product)s at ¥%(price)s)")),
                     (None, _("Applied for credit for file %(id)s"))),
    "credit.decide": ((r"application (?P<a>\d+) \w+ (?P<status>\w+)",
                       _("Decided application #%(a)s of file %(id)s: %(status)s")),
                      (None, _("Decided a credit application"))),
    "credit.terms": ((r"from (?P<day>[0-9-]+)", _("Changed the credit terms from %(day)s")),),
    "credit.sell": ((r"order (?P<o>\d+) receipt \S+ (?P<terms>\w+) (?P<boxes>\d+) boxes (?P<amount_fen>\d+) fen",
                     _("Sold %(terms)s to file %(id)s: order #%(o)s, %(boxes)s boxes, ¥%(amount)s")),
                    (None, _("Sold on terms to file %(id)s"))),
    "credit.deliver": ((r"order (?P<o>\d+) delivered \S+ due (?P<due>\S+) (?P<amount_fen>\d+) fen",
                        _("Delivered order #%(o)s of file %(id)s (¥%(amount)s due %(due)s)")),),
    "credit.view": ((r"credit page, " + _N + " orders", _("Read the credit page of file %(id)s (%(n)s orders)")),
                    (None, _("Read the credit page of file %(id)s"))),
    "receivable.collect": ((r"order (?P<o>\d+) paid (?P<amount_fen>\d+) fen \w+ received by (?P<user>\S+)",
                            _("Recorded ¥%(amount)s paid for order #%(o)s of file %(id)s, received by %(user)s")),),
    "receivable.write_off": ((r"order (?P<o>\d+) written off (?P<amount_fen>\d+) fen",
                              _("Wrote off ¥%(amount)s of order #%(o)s of file %(id)s")),),
    "receivable.board": ((_N + r" open, (?P<late>\d+) overdue",
                          _("Read the receivables (%(n)s open, %(late)s overdue)")),
                         (None, _("Read the receivables"))),
    "receivable.import": ((_N + r" payment\(s\), (?P<amount_fen>\d+) fen", _("Imported %(n)s payments (¥%(amount)s)")),),
    "liability.view": ((_N + " rows", _("Read the liabilities (%(n)s rows)")), (None, _("Read the liabilities"))),
    "liability.export": ((r"\w+ rows=" + _N, _("Exported the liabilities (%(n)s rows)")),),
    "catalogue.edit": ((r"version (?P<v>\d+) from (?P<day>\S+)",
                        _("Changed product %(id)s in the catalogue from %(day)s (version %(v)s)")),),
    "catalogue.view": ((None, _("Read the catalogue")),),
    # member events
    "event.manage": ((r"plan (?P<unit>\S+) (?P<year>\d{4}) budget (?P<amount_fen>\d+) fen",
                      _("Made the %(year)s event plan of unit %(unit)s (budget ¥%(amount)s)")),
                     (r"event \w+ in plan \d+, capacity (?P<cap>\d+), budget (?P<amount_fen>\d+) fen",
                      _("Planned event #%(id)s (%(cap)s places, budget ¥%(amount)s)")),
                     (r"actual cost (?P<amount_fen>\d+) fen", _("Recorded the actual cost of event #%(id)s: ¥%(amount)s")),
                     (r"invited " + _N + " members", _("Invited %(n)s members to event #%(id)s")),
                     (None, _("Managed event #%(id)s"))),
    "event.register": ((r"registered: file (?P<file>[^,]+)", _("Registered file %(file)s for event #%(id)s")),
                       (r"waitlisted: file (?P<file>[^,]+)", _("Put file %(file)s on the waiting list of event #%(id)s")),
                       (r"cancelled registration (?P<r>\d+)", _("Cancelled registration #%(r)s of event #%(id)s")),
                       (None, _("Changed a registration for event #%(id)s"))),
    "event.checkin": ((r"checked in registration (?P<r>\d+), (?P<points>\d+) points",
                       _("Checked in registration #%(r)s at event #%(id)s (%(points)s points)")),
                      (r"satisfaction (?P<score>\d+) for registration (?P<r>\d+)",
                       _("Recorded satisfaction %(score)s for registration #%(r)s of event #%(id)s")),
                      (None, _("Checked in at event #%(id)s"))),
    "event.summary": ((r"attended (?P<a>\d+) of " + _N, _("Read the summary of event #%(id)s (%(a)s of %(n)s came)")),
                      (None, _("Read the summary of event #%(id)s"))),
    "event.view": ((_N + " registrations shown", _("Read event #%(id)s (%(n)s registrations)")),
                   (None, _("Read the member events"))),
    # messages to members and consent
    "messages.contact": ((None, _("Set the contact preferences of file %(id)s")),),
    "messages.consent": ((None, _("Read the consent records of file %(id)s")),),
    "messages.outbox": ((r"status \S+, " + _N + " messages", _("Read the outbox (%(n)s messages)")),
                        (None, _("Read the outbox"))),
    "messages.care": ((None, _("Opened the care message")),),
    "messages.care_preview": ((_N + " members in scope", _("Previewed the care message of %(id)s (%(n)s members)")),),
    "messages.care_send": ((_N + r" written, (?P<skip>\d+) without",
                            _("Sent the care message of %(id)s: %(n)s written, %(skip)s without consent or sent before")),),
    "messages.settings": ((None, _("Changed the rules for sending messages to members")),),
    "consent.given": ((r"(?P<channel>\w+) (?P<purpose>\w+) by", _("File %(id)s agreed to %(purpose)s by %(channel)s")),
                      (None, _("Recorded consent of file %(id)s"))),
    "consent.withdrawn": ((r"(?P<channel>\w+) (?P<purpose>\w+) by",
                           _("File %(id)s withdrew consent to %(purpose)s by %(channel)s")),
                          (None, _("Recorded a withdrawal of consent of file %(id)s"))),
    # personal data
    "privacy.request": ((None, _("Opened the personal data page of file %(id)s")),),
    "privacy.report": ((None, _("Made the personal data report of file %(id)s")),),
    "privacy.correction_request": ((r"correction (?P<c>\d+)", _("Asked for correction #%(c)s of file %(id)s")),),
    "privacy.correction_answer": ((r"correction (?P<c>\d+)", _("Answered correction #%(c)s of file %(id)s")),),
    "privacy.correction_refuse": ((r"correction (?P<c>\d+)", _("Refused correction #%(c)s of file %(id)s")),),
    "privacy.erasure_request": ((r"request (?P<r>\d+)", _("Asked to erase file %(id)s (request #%(r)s)")),),
    "privacy.erasure_refuse": ((r"request (?P<r>\d+)", _("Refused erasure request #%(r)s of file %(id)s")),),
    "privacy.erase": ((_N + " rows", _("Read the erasure requests (%(n)s rows)")),
                      (r"(request \d+ )?(customer key destroyed|fields deleted)", _("Erased the personal data of file %(id)s")),
                      (None, _("Erased the personal data of file %(id)s"))),
    "privacy.retention": ((r"lapsed_member_days=" + _N + r" from (?P<day>\S+)",
                           _("Set the retention of lapsed members' files to %(n)s days from %(day)s")),),
    # reports, penalties, settings
    "report.view": ((None, _("Read report %(id)s")),),
    "report.export": ((r"format=(?P<fmt>\w+) rows=" + _N, _("Exported report %(id)s (%(n)s rows)")),),
    "report.send": ((None, _("Sent the monthly report %(id)s")),),
    "report.audit": ((None, _("Read the audit analytics")),),
    "penalty.record": ((r"penalty (?P<p>\d+) \w+ (?P<amount_fen>\d+) fen", _("Recorded penalty #%(p)s for %(id)s (¥%(amount)s)")),),
    "penalty.view": ((_N + " rows", _("Read the penalties (%(n)s rows)")), (None, _("Read the penalties"))),
    "programme.view": ((None, _("Read the membership programme")),),
    "home.view": ((_N + " birthdays", _("Opened the home page (%(n)s birthdays read to count today's)")),
                  (None, _("Opened the home page"))),
    "service.lookup": ((r"desk search: " + _N, _("Searched members at the service desk (%(n)s found)")),
                       (None, _("Searched members at the service desk"))),
    "service.card": ((None, _("Looked up card %(id)s at the service desk")),),
    "member.join": ((r"(?P<cause>\w+)$", _("File %(id)s joined the membership programme (%(cause)s)")),
                    (None, _("File %(id)s joined the membership programme"))),
    "member.apply": ((r"application (?P<a>\d+)", _("Applied for membership for file %(id)s (application #%(a)s)")),
                     (None, _("Applied for membership for file %(id)s"))),
    "member.review": ((_N + " rows", _("Read the membership applications (%(n)s rows)")),
                      (r"application (?P<a>\d+) (?P<status>\w+)", _("Reviewed application #%(a)s of file %(id)s: %(status)s")),
                      (None, _("Reviewed a membership application for file %(id)s"))),
    "member.tier": ((r"(?P<old>\w+) -> (?P<tier>\w+)", _("Changed the tier of file %(id)s from %(old)s to %(tier)s")),
                    (None, _("Changed the tier of file %(id)s"))),
    "member.lists": ((_N + " candidate", _("Opened the points due to expire (%(n)s accounts read)")),
                     (r"week of (?P<day>\S+), " + _N, _("Opened the birthdays of the week of %(day)s (%(n)s members read)")),
                     (None, _("Opened a member list"))),
    "card.issue": ((r"file (?P<file>.+) type", _("Issued card %(id)s to file %(file)s")), (None, _("Issued card %(id)s"))),
    "card.pin": ((None, _("The member set the PIN of card %(id)s")),),
    "card.loss": ((None, _("Reported card %(id)s lost")),),
    "card.replace": ((None, _("Replaced card %(id)s")),),
    "card.freeze": ((None, _("Froze card %(id)s")),),
    "card.unfreeze": ((None, _("Unfroze card %(id)s")),),
    "card.cancel": ((None, _("Cancelled card %(id)s")),),
    "card.restore": ((None, _("Restored card %(id)s")),),
    "card.renew": ((None, _("Renewed card %(id)s")),),
    "member.exception": ((r"application (?P<a>\d+)", _("Waived the joining condition for file %(id)s (application #%(a)s)")),),
    "member.purchase_import": ((_N + " purchase", _("Imported %(n)s purchases")),),
    "customer.reindex": ((_N + " file", _("Indexed %(n)s files for search")),),
    "demo.load": ((r"units=(?P<units>\d+) users=(?P<users>\d+) customer_files=" + _N,
                   _("Loaded the demo data (%(units)s units, %(users)s users, %(n)s customer files)")),
                  (None, _("Loaded the demo data"))),
    # accounts: set-up codes, edits, approvals
    "user.edit": ((None, _("Edited user %(id)s")),),
    "user.setup_code": ((None, _("Gave %(id)s a one-time set-up code")),),
    "user.password_reset": ((None, _("Reset the password of %(id)s (a set-up code replaces it)")),),
    "user.setup": ((None, _("%(id)s chose a password with a set-up code")),),
    "user.password_help": ((None, _("%(id)s said they forgot their password")),),
    "user.approvals_view": ((r"pending=" + _N, _("Read the account approvals (%(n)s waiting)")),),
    "user.reach_request": ((None, _("Asked a leader to approve a change to %(id)s")),),
    "user.reach_approve": ((None, _("Approved the change to %(id)s")),),
    "user.reach_deny": ((None, _("Refused the change to %(id)s")),),
    "user.reach_direct": ((None, _("Changed %(id)s without a second approver")),),
    # coupons, points as money, the birthday check, liabilities settled, overdue reminders
    "coupon.issue": ((_N + r" coupon\(s\) to (?P<tiers>[\w,]*): (?P<name>.*)",
                      _("Issued campaign #%(id)s: %(n)s coupon(s), %(name)s")),
                     (None, _("Issued coupon campaign #%(id)s"))),
    "coupon.birthday": ((_N + r" birthday coupon", _("Issued %(n)s birthday coupon(s)")),
                        (None, _("Issued birthday coupons"))),
    "coupon.void": ((r"file (?P<file>.+)", _("Voided coupon #%(id)s of file %(file)s")),
                    (None, _("Voided coupon #%(id)s"))),
    "coupon.expire": ((_N + r" coupon", _("Expired %(n)s coupon(s) on %(id)s")),
                      (None, _("Expired coupons on %(id)s"))),
    "coupon.view": ((None, _("Read the coupon campaigns")),),
    "member.points_cash": ((r"(?P<points>\d+) points for (?P<cash_fen>\d+) fen.*file (?P<file>\S+)",
                            _("Exchanged %(points)s points of card %(id)s for %(cash)s in cash (file %(file)s)")),
                           (None, _("Exchanged points of card %(id)s for cash"))),
    "member.birthday_check": ((r"receipt (?P<receipt>\S+):",
                               _("Birthday discount refused on receipt %(receipt)s of file %(id)s: the holder "
                                 "did not match")),
                              (None, _("Birthday discount refused for file %(id)s"))),
    "liability.settle": ((r"settlement (?P<n>\d+): (?P<amount_fen>\d+) fen .*; (?P<left_fen>\d+) fen outstanding",
                          _("Recorded settlement #%(n)s of liability #%(id)s: %(amount)s paid, %(left)s outstanding")),
                         (None, _("Recorded a settlement of liability #%(id)s"))),
    "credit.reminders": ((r"(?P<day>[0-9-]+): (?P<s>\d+) salespeople, (?P<l>\d+) leaders",
                          _("Sent the overdue reminders of %(day)s (%(s)s salespeople, %(l)s leaders)")),
                         (None, _("Sent the overdue reminders"))),
    # what the policy names (refusals of pages are audited under these)
    "access.decide": ((None, _("Decided an access request")),),
    "account.self": ((None, _("Used own account settings")),),
    "account.approve": ((None, _("Decided an account change")),),
    "admin.users": ((None, _("Managed users")),),
    "admin.units": ((None, _("Managed units")),),
    "admin.mfa": ((None, _("Reset a second factor")),),
    "admin.password": ((None, _("Reset a password")),),
    "member.card.verify": ((None, _("Card %(id)s: the ID number did not match the holder")),),
}


# When no shape of the detail matches (or the detail is empty): the plain sentence.
FALLBACK: dict[str, str] = {
    "complaint.record": _("Recorded complaint #%(id)s"), "complaint.work": _("Worked on complaint #%(id)s"),
    "servicerules.edit": _("Changed the member service settings"),
    "credit.grant": _("Granted credit to file %(id)s"), "credit.revoke": _("Revoked a credit grant of file %(id)s"),
    "credit.terms": _("Changed the credit terms"), "credit.deliver": _("Delivered an order of file %(id)s"),
    "receivable.collect": _("Recorded a payment of file %(id)s"),
    "receivable.write_off": _("Wrote off a debt of file %(id)s"), "receivable.import": _("Imported payments"),
    "liability.export": _("Exported the liabilities"), "catalogue.edit": _("Changed product %(id)s in the catalogue"),
    "messages.care_preview": _("Previewed the care message of %(id)s"),
    "messages.care_send": _("Sent the care message of %(id)s"),
    "privacy.correction_request": _("Asked for a correction of file %(id)s"),
    "privacy.correction_answer": _("Answered a correction of file %(id)s"),
    "privacy.correction_refuse": _("Refused a correction of file %(id)s"),
    "privacy.erasure_request": _("Asked to erase file %(id)s"),
    "privacy.erasure_refuse": _("Refused to erase file %(id)s"),
    "privacy.retention": _("Changed how long lapsed members' files are kept"),
    "report.export": _("Exported report %(id)s"), "penalty.record": _("Recorded a penalty for %(id)s"),
    "user.approvals_view": _("Read the account approvals"),
    "member.exception": _("Waived the joining condition for file %(id)s"),
    "member.purchase_import": _("Imported purchases"), "customer.reindex": _("Indexed files for search"),
    "customer.tally": _("Recounted the files per owner and unit"),
    "member.purchase": _("Recorded a purchase for %(id)s"), "member.return": _("Recorded a return for %(id)s"),
    "member.stored_value": _("Used the stored value of card %(id)s"),
    "member.redeem": _("Redeemed points on card %(id)s"), "member.adjust": _("Adjusted card %(id)s"),
    "member.claim": _("Credited missed points on card %(id)s"),
}


def fallback_work(action: str, object_id: str, detail: str) -> Words | None:
    message = FALLBACK.get(action)
    if message is None:
        return None
    return Words(Phrase(message, {"id": object_id} if "%(id)s" in message else {}), detail_said=not detail)


def _value(name: str, value: str):
    if name in CODE_WORDS:
        return Phrase(CODE_WORDS[name].get(value, value))
    return value


def describe_work(action: str, object_id: str, detail: str) -> Words | None:
    """The entry in words, or None when this table has no words for the action."""
    rules = RULES.get(action)
    if rules is None and action.startswith("member.card."):
        rules = RULES["member.card.verify"]
    if rules is None:
        return None
    for pattern, message in rules:
        m = re.match(pattern, detail or "") if pattern else True
        if not m:
            continue
        params = {"id": object_id}
        if m is not True:
            for k, v in m.groupdict().items():
                if v is None:
                    continue
                if k.endswith("_fen"):
                    params[k[:-4]] = yuan(int(v))
                else:
                    params[k] = _value(k, v)
        said = pattern is not None or not detail
        return Words(Phrase(message, {k: v for k, v in params.items() if f"%({k})s" in message}),
                     detail_said=said)
    return None
