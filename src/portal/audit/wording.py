"""An audit entry in words: what was done, to what, and the detail that matters, as translatable phrases.

The log stores codes ("customer.export", "rows=50 sha256=…"); people read sentences ("导出 50 份档案
（用途：季度回访）"). `describe(entry)` returns phrases (an English message id with named
parameters), which each page translates with gettext; the code itself stays on the entry, in
the CSV export and in the page (a column and a tooltip). Nothing here imports the web layer;
messages are marked with `_` only so that extraction finds them.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Callable, Protocol


def _(message: str) -> str:
    """Mark a message for extraction; it is translated when shown."""
    return message


@dataclass(frozen=True)
class Phrase:
    message: str                      # English source text, a msgid with %(name)s placeholders
    params: dict = field(default_factory=dict)  # values: str, int, or Phrase (translated first)

    def render(self, gettext: Callable[..., str]) -> str:
        values = {k: v.render(gettext) if isinstance(v, Phrase) else v for k, v in self.params.items()}
        return gettext(self.message, **values) if values else gettext(self.message)


@dataclass(frozen=True)
class Words:
    what: Phrase                      # the sentence: "Viewed file 755 00021"
    reason: Phrase | None = None      # a machine reason in words; a person's reason is shown as typed
    detail_said: bool = True          # False: the detail was not understood and is shown as stored


class Entry(Protocol):
    action: str
    object_type: str
    object_id: str
    fields: str
    outcome: str
    reason: str
    detail: str
    grant_id: int | None


# Field names as stored -> words.
FIELD_WORDS = {
    "name": _("Name"), "mobile": _("Mobile"), "id_number": _("ID number"), "birthday": _("Birthday"),
    "address": _("Address"), "employer": _("Employer"), "position": _("Position"), "notes": _("Notes"),
    "owner": _("Owner"), "gender": _("Gender"), "category": _("Category"),
}

# Machine reasons (never a person's words) -> words.
REASON_WORDS = {
    "bad credentials": _("wrong user name or password"),
    "throttled": _("too many failed attempts"),
    "wrong code": _("wrong code"),
    "card not in scope": _("a card of another team's member: a mistyped number?"),
}

SCOPE_WORDS = {"view": _("view"), "view_edit": _("view and edit")}


def _kv(detail: str) -> dict[str, str]:
    return dict(re.findall(r"(\w+)=(\S*)", detail or ""))


def _int(pattern: str, text: str) -> int | None:
    m = re.search(pattern, text or "")
    return int(m.group(1)) if m else None


def yuan(fen: int) -> str:
    sign = "-" if fen < 0 else ""
    return f"{sign}{abs(fen) // 100:,}.{abs(fen) % 100:02d}"


def fields_words(fields: str) -> list[Phrase]:
    return [Phrase(FIELD_WORDS.get(f, f)) for f in (fields or "").split(",") if f]


def _file(e: Entry) -> str:
    return e.object_id


# ---------------------------------------------------------------- one function per family of actions

def _customer(e: Entry) -> Words:
    a, d = e.action, e.detail or ""
    if a == "customer.view":
        if d in ("edit form", "inline edit"):
            return Words(Phrase(_("Opened file %(file)s to edit it"), {"file": _file(e)}))
        return Words(Phrase(_("Viewed file %(file)s"), {"file": _file(e)}), detail_said=not d)
    if a == "customer.edit":
        return Words(Phrase(_("Edited file %(file)s"), {"file": _file(e)}))
    if a == "customer.create":
        return Words(Phrase(_("Created file %(file)s"), {"file": _file(e)}))
    if a == "customer.list":
        n = _int(r"(\d+) masked row", d)
        if n is None:
            return Words(Phrase(_("Listed files")), detail_said=not d)
        return Words(Phrase(_("Listed files (%(n)s rows, masked)"), {"n": n}))
    if a == "customer.search":
        if d == "unsupported query":
            return Words(Phrase(_("Searched files (a query the portal does not support)")))
        n = _int(r"(\d+) result", d)
        return Words(Phrase(_("Searched files (%(n)s results)"), {"n": n if n is not None else 0}),
                     detail_said=n is not None or not d)
    if a == "customer.export":
        kv = _kv(d)
        words = Phrase(_("Exported %(n)s files (purpose: %(purpose)s)"),
                       {"n": kv.get("rows", "?"), "purpose": e.reason or "—"})
        if kv.get("export"):
            words = Phrase(_("%(what)s, export #%(id)s"), {"what": words, "id": kv["export"]})
        return Words(words)
    if a == "customer.export_request":
        kv = _kv(d)
        return Words(Phrase(_("Asked to export %(n)s files (purpose: %(purpose)s): waits for a leader"),
                            {"n": kv.get("rows", "?"), "purpose": e.reason or "—"}))
    if a == "customer.reassign":
        m = re.match(r"from (\S+) to (\S+)", d)
        if m:
            return Words(Phrase(_("Moved file %(file)s from %(old)s to %(new)s"),
                                {"file": _file(e), "old": m.group(1), "new": m.group(2)}))
        return Words(Phrase(_("Moved file %(file)s to another owner"), {"file": _file(e)}), detail_said=False)
    if a == "customer.duplicate_check":
        n = _int(r"(\d+) existing", d) or 0
        return Words(Phrase(_("Checked for duplicates: %(n)s existing file(s), creation stopped"), {"n": n}))
    if a == "customer.import":
        n = _int(r"(\d+) file", d)
        return Words(Phrase(_("Imported %(n)s files"), {"n": n if n is not None else "?"}))
    return _unknown(e)


def _access(e: Entry) -> Words:
    a, kv = e.action, _kv(e.detail)
    p = {"file": _file(e), "grant": e.grant_id or "?"}
    if a == "access.request":
        return Words(Phrase(_("Asked for access to file %(file)s (request #%(grant)s: %(scope)s, %(hours)s h)"),
                            {**p, "scope": Phrase(SCOPE_WORDS.get(kv.get("scope", ""), kv.get("scope", "?"))),
                             "hours": kv.get("hours", "?")}))
    if a == "access.approve":
        return Words(Phrase(_("Approved grant #%(grant)s to file %(file)s for %(hours)s h"),
                            {**p, "hours": kv.get("hours", "?")}))
    if a == "access.deny":
        return Words(Phrase(_("Refused request #%(grant)s for file %(file)s"), p))
    if a == "access.revoke":
        return Words(Phrase(_("Revoked grant #%(grant)s to file %(file)s"), p))
    return _unknown(e)


def _export(e: Entry) -> Words:
    kv = _kv(e.detail)
    p = {"id": e.object_id, "n": kv.get("rows", "?"), "user": kv.get("exporter", "?")}
    if e.action == "export.approve":
        return Words(Phrase(_("Approved export #%(id)s of %(n)s files by %(user)s"), p))
    return Words(Phrase(_("Refused export #%(id)s of %(n)s files by %(user)s"), p))


def _account(e: Entry) -> Words:
    a, kv = e.action, _kv(e.detail)
    reason = Phrase(REASON_WORDS[e.reason]) if e.reason in REASON_WORDS else None
    simple = {
        "auth.sign_in": _("Signed in"), "auth.sign_out": _("Signed out"),
        "mfa.enrol": _("Set up a second factor"),
    }
    if a in simple:
        return Words(Phrase(simple[a]), reason)
    if a == "auth.second_factor":
        how = {"recovery": _("with a recovery code"), "totp": _("with the authenticator app")}.get(e.detail)
        if how:
            return Words(Phrase(_("Confirmed the second factor %(how)s"), {"how": Phrase(how)}), reason)
        return Words(Phrase(_("Confirmed the second factor")), reason, detail_said=not e.detail)
    user = {"user": e.object_id}
    if a == "mfa.reset":
        return Words(Phrase(_("Reset the second factor of %(user)s"), user))
    if a == "user.create":
        return Words(Phrase(_("Created user %(user)s (%(role)s, unit %(unit)s)"),
                            {**user, "role": Phrase(kv.get("role", "?")), "unit": kv.get("unit", "?")}))
    if a == "user.enable":
        return Words(Phrase(_("Enabled user %(user)s"), user))
    if a == "user.disable":
        return Words(Phrase(_("Disabled user %(user)s"), user))
    if a == "user.password":
        return Words(Phrase(_("Set the password of %(user)s"), user))
    if a == "unit.create":
        return Words(Phrase(_("Created unit %(unit)s"), {"unit": e.object_id}))
    return _unknown(e)


def _auditing(e: Entry) -> Words:
    a, kv = e.action, _kv(e.detail)
    if a == "audit.view":
        return Words(Phrase(_("Read the audit log")))
    if a == "audit.export":
        return Words(Phrase(_("Exported %(n)s audit entries"), {"n": kv.get("rows", "?")}))
    if a == "audit.verify":
        return Words(Phrase(_("Checked the audit chain (%(n)s entries)"), {"n": kv.get("count", "?")}))
    if a == "audit.checkpoint":
        return Words(Phrase(_("Signed a checkpoint at entry %(n)s"), {"n": kv.get("seq", "?")}))
    if a == "audit.alerts":
        return Words(Phrase(_("Looked at the alerts")))
    if a == "audit.trace":
        return Words(Phrase(_("Traced a leaked file")))
    if a == "audit.history":
        return Words(Phrase(_("Read the access history of file %(file)s"), {"file": _file(e)}))
    return _unknown(e)


def _membership(e: Entry) -> Words:
    a, d = e.action, e.detail or ""
    card = {"card": e.object_id, "file": e.object_id}
    if a == "member.purchase":
        m = re.match(r"receipt (\S+) paid (-?\d+) fen points (-?\d+)", d)
        if m:
            return Words(Phrase(_("Recorded purchase %(receipt)s: paid ¥%(paid)s, %(points)s points"),
                                {"receipt": m.group(1), "paid": yuan(int(m.group(2))), "points": m.group(3)}))
    if a == "member.return":
        m = re.match(r"receipt (\S+) points -(\d+) shortfall (\d+) refund (\d+) fen", d)
        if m:
            return Words(Phrase(_("Recorded a return of %(receipt)s: %(points)s points taken back, ¥%(refund)s refunded"),
                                {"receipt": m.group(1), "points": m.group(2), "refund": yuan(int(m.group(4)))}))
    if a == "member.stored_value":
        m = re.match(r"(recharge|spend) (\d+) fen", d)
        if m and m.group(1) == "recharge":
            return Words(Phrase(_("Recharged ¥%(amount)s on card %(card)s"), {**card, "amount": yuan(int(m.group(2)))}))
        if m:
            return Words(Phrase(_("Paid ¥%(amount)s from stored value on card %(card)s"),
                                {**card, "amount": yuan(int(m.group(2)))}))
        if d == "wrong PIN or ID number":
            return Words(Phrase(_("Stored value on card %(card)s: wrong PIN or ID number"), card))
    if a == "member.redeem":
        m = re.match(r"(\S+) for (\d+) points", d)
        if m:
            return Words(Phrase(_("Redeemed %(points)s points for %(item)s on card %(card)s"),
                                {**card, "points": m.group(2), "item": m.group(1)}))
    if a == "member.adjust":
        m = re.match(r"([+-]\d+) points", d) or re.match(r"stored value ([+-]\d+) fen", d)
        if m and "points" in d:
            return Words(Phrase(_("Adjusted card %(card)s by %(points)s points"), {**card, "points": m.group(1)}))
        if m:
            return Words(Phrase(_("Adjusted the stored value on card %(card)s by ¥%(amount)s"),
                                {**card, "amount": yuan(int(m.group(1)))}))
    if a == "member.claim":
        m = re.match(r"receipt (\S+) \+(\d+) points", d)
        if m:
            return Words(Phrase(_("Credited %(points)s missed points for receipt %(receipt)s on card %(card)s"),
                                {**card, "points": m.group(2), "receipt": m.group(1)}))
    simple = {
        "member.join": _("File %(file)s joined the membership programme"),
        "member.apply": _("Applied for membership for file %(file)s"),
        "member.review": _("Reviewed a membership application for file %(file)s"),
        "member.tier": _("Changed the tier of file %(file)s"),
        "member.end": _("Ended the membership of file %(file)s"),
        "member.view": _("Looked up card %(card)s"),
        "card.issue": _("Issued card %(card)s"),
    }
    if a in simple:
        return Words(Phrase(simple[a], card), detail_said=False)
    if a == "member.lists":
        return Words(Phrase(_("Opened a member list")), detail_said=False)
    if a.startswith("card."):
        return Words(Phrase(_("Card %(card)s: %(step)s"), {**card, "step": Phrase(a.split(".", 1)[1])}))
    return _unknown(e)


def _unknown(e: Entry) -> Words:
    """An action this module has no words for yet: its code, said as such."""
    return Words(Phrase(_UNKNOWN, {"action": e.action}), detail_said=False)


_UNKNOWN = _("%(action)s (no description yet)")


_FAMILIES = {
    "customer": _customer, "access": _access, "export": _export, "auth": _account, "mfa": _account,
    "user": _account, "unit": _account, "audit": _auditing, "member": _membership, "card": _membership,
}

OTHER = {
    "programme.edit": _("Edited the membership programme's settings"),
    "keys.rotate": _("Rotated the data keys"),
    "keys.retire": _("Retired unused data keys"),
    "admin.terminals": _("Managed POS terminal %(id)s"),
    "member.pos": _("A POS terminal's call"),
    "backup.create": _("Made an encrypted backup of the database"),
    "backup.restore": _("Restored the database from a backup"),
    "backup.keys": _("Copied the customers' own data keys (key backup or restore)"),
}


def describe(e: Entry) -> Words:
    """The entry in words (phrases to translate), whatever its outcome (shown beside it)."""
    if e.action in OTHER:
        return Words(Phrase(OTHER[e.action], {"id": e.object_id} if "%(id)s" in OTHER[e.action] else {}),
                     detail_said=False)
    family = _FAMILIES.get(e.action.split(".", 1)[0])
    try:
        words = describe_work(e.action, e.object_id, e.detail)
        if words is None:
            words = family(e) if family else _unknown(e)
    except (ValueError, KeyError):
        words = _unknown(e)
    if words.what.message == _UNKNOWN:
        words = fallback_work(e.action, e.object_id, e.detail) or words
    if e.outcome == "denied":
        words = Words(Phrase(_("Refused: %(what)s"), {"what": words.what}), words.reason, words.detail_said)
    return words


def names_a_file(e: Entry) -> bool:
    """The entry is about one customer file (so its access history is one click away)."""
    return e.object_type == "customer" and bool(e.object_id) and "," not in e.object_id


from .wording_work import describe_work, fallback_work  # noqa: E402  (it builds on Phrase and Words above)
