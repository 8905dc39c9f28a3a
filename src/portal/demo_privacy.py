"""Demo data for personal data (PIPL): consent records with a withdrawal, a correction request
answered by an edit (and one still open), an erasure waiting for bob's approval, and a past
erasure bob approved (the file shows as erased; its ledgers and audit trail remain).

It uses alice's files that nothing else in the demo touches (no membership, complaint, consent,
grant ... refers to them), the newest ones, so other demos and the browser tests keep theirs.
"""
from __future__ import annotations

from datetime import datetime, time, timedelta, timezone

from sqlalchemy import select
from sqlalchemy.orm import Session

from . import clock
from .accounts.actor import Actor
from .accounts.models import User
from .consent import service as consent
from .consent.models import ConsentRecord
from .customers.models import CustomerFile
from .membership.rules import PROGRAMME_TZ, programme_today
from .org.models import OrgUnit
from .privacy import corrections, erasure
from .privacy.models import CorrectionRequest, ErasureRequest
from .vault import Vault


def _actor(s: Session, username: str) -> Actor | None:
    from .accounts import service as accounts
    u = s.scalar(select(User).where(User.username == username))
    return accounts.actor_for(u, s.get(OrgUnit, u.unit_id), "127.0.0.1") if u else None


def _untouched_files(s: Session, owner_id: int, n: int) -> list[CustomerFile]:
    """The owner's newest files that no other row refers to."""
    from . import models

    used = set()
    for table in models.metadata.tables.values():
        for fk in table.foreign_keys:
            if fk.column.table.name == CustomerFile.__tablename__ and table.name != CustomerFile.__tablename__:
                used.update(s.scalars(select(fk.parent).distinct()))
    files = s.scalars(select(CustomerFile).where(CustomerFile.owner_id == owner_id, CustomerFile.erased_at.is_(None))
                      .order_by(CustomerFile.file_no.desc()).limit(n + len(used)))
    return [f for f in files if f.id not in used][:n]


def seed(s: Session, vault: Vault, summary) -> None:
    """Idempotent: once any erasure or correction request exists, nothing more is done."""
    alice, bob = _actor(s, "alice"), _actor(s, "bob")
    if alice is None or bob is None:
        return
    done = s.scalar(select(ErasureRequest.id).limit(1)) or s.scalar(select(CorrectionRequest.id).limit(1))
    if not done:
        files = _untouched_files(s, alice.user_id, 4)
        if len(files) < 4:
            summary.warnings.append("no personal-data demo: alice has too few files of her own")
            return
        _seed(s, vault, alice, bob, *files)
    def file_no(stmt) -> str:
        return s.scalar(stmt.limit(1)) or "-"

    erased = file_no(select(ErasureRequest.file_no).where(ErasureRequest.status == "approved"))
    waiting = file_no(select(ErasureRequest.file_no).where(ErasureRequest.status == "pending"))
    corrected = file_no(select(CustomerFile.file_no).join(CorrectionRequest,
                                                          CorrectionRequest.customer_id == CustomerFile.id))
    withdrew = file_no(select(CustomerFile.file_no).join(ConsentRecord, ConsentRecord.customer_id == CustomerFile.id)
                       .where(ConsentRecord.method == "email_link"))
    summary.notes.append(
        f"personal data: bob approves or refuses the erasure of file {waiting} at /privacy/erasures (file "
        f"{erased} was erased 30 days ago: it shows as erased; its number and audit trail remain); file "
        f"{corrected}'s 'Personal data' page has a correction answered by an edit and one open, and the subject "
        f"access report (bob); file {withdrew} withdrew marketing e-mail through the link (its 'Consent and "
        f"messages'); admin sets retention at /privacy/retention")


def _seed(s: Session, vault: Vault, alice: Actor, bob: Actor, erased, waiting, corrected, consenting) -> None:
    today = programme_today()
    previous = getattr(clock, "_override", None)

    def on(days_ago: int, step):
        day = today - timedelta(days=days_ago)
        clock.set_now(datetime.combine(day, time(11), PROGRAMME_TZ).astimezone(timezone.utc))
        return step()

    try:
        # Consent: service SMS and marketing e-mail given on the application form; the member
        # later withdrew the marketing e-mails through the link in one of them.
        on(60, lambda: consent.record(s, alice, consenting.id, channel="sms", purpose="service", given=True,
                                      method="paper_form", collected="name,mobile,purchases", note="会员申请表 (demo)"))
        on(60, lambda: consent.record(s, alice, consenting.id, channel="email", purpose="marketing", given=True,
                                      method="paper_form", collected="name,email,birthday", note="会员申请表 (demo)"))
        on(12, lambda: consent.record(s, None, consenting.id, channel="email", purpose="marketing", given=False,
                                      method="email_link"))
        # A past erasure: asked for on the phone, approved by bob the next day.
        req = on(31, lambda: erasure.request_erasure(s, alice, erased.id, "客户来电要求删除其个人信息（已核实身份）"))
        on(30, lambda: erasure.approve(s, bob, req.id, "已核实，同意删除"))
        # A correction answered by an edit of the file, and one still open.
        fix = on(20, lambda: corrections.record_request(s, vault, alice, corrected.id, "address",
                                                        "客户已搬家，新地址：深圳市福田区福华三路 88 号 2101 室"))
        on(19, lambda: corrections.answer(s, vault, alice, fix.id, "深圳市福田区福华三路88号2101室"))
        on(2, lambda: corrections.record_request(s, vault, alice, corrected.id, "employer",
                                                 "工作单位名称有误，应为“深圳前海微众银行”"))
        # An erasure waiting for bob.
        on(1, lambda: erasure.request_erasure(s, alice, waiting.id, "客户在门店书面申请删除个人信息"))
    finally:
        clock.set_now(previous)
