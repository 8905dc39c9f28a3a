"""What a restored database must satisfy: every encrypted value opens, every ledger balances.

Used by `portal backup restore` when the data key file is at hand (a restore drill on the
production host), and by the tests.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ..vault import Vault, VaultError


@dataclass
class DecryptReport:
    values: int = 0
    failures: list[tuple[str, str, object]] = field(default_factory=list)  # (table, column, row)


def decrypt_everything(s: Session, vault: Vault, batch: int = 2000) -> DecryptReport:
    """Open every sealed value of every encrypted column (customer files, second factors, ...)."""
    from .. import models
    from ..encrypted_columns import registry

    report = DecryptReport()
    for et in registry(models.metadata):
        after = None
        while True:
            stmt = select(et.pk, *et.columns).order_by(et.pk).limit(batch)
            if after is not None:
                stmt = stmt.where(et.pk > after)
            rows = s.execute(stmt).all()
            for row in rows:
                for col, blob in zip(et.columns, row[1:]):
                    if blob is None:
                        continue
                    report.values += 1
                    try:
                        vault.decrypt(bytes(blob), table=et.name, column=et.aad_column(col), row_id=row[0])
                    except VaultError:
                        report.failures.append((et.name, col.name, row[0]))
            if len(rows) < batch:
                break
            after = rows[-1][0]
    return report


def unbalanced_accounts(s: Session) -> tuple[int, list[tuple[int, int, int, int, int]]]:
    """(accounts checked, [(account, points balance, points ledger sum, stored value, stored value
    ledger sum)] for each card account whose cached balance differs from its ledger's sum)."""
    from ..membership.models import CardAccount, PointsEntryRow, StoredValueEntryRow

    points = dict(s.execute(select(PointsEntryRow.account_id, func.sum(PointsEntryRow.points))
                            .group_by(PointsEntryRow.account_id)).all())
    stored = dict(s.execute(select(StoredValueEntryRow.account_id, func.sum(StoredValueEntryRow.amount_fen))
                            .group_by(StoredValueEntryRow.account_id)).all())
    wrong, n = [], 0
    for acc, pts, fen in s.execute(select(CardAccount.id, CardAccount.points_balance,
                                          CardAccount.stored_value_fen)):
        n += 1
        p_sum, v_sum = int(points.get(acc) or 0), int(stored.get(acc) or 0)
        if (pts, fen) != (p_sum, v_sum):
            wrong.append((acc, pts, p_sum, fen, v_sum))
    orphans = (set(points) | set(stored)) - {a for a, *_ in s.execute(select(CardAccount.id))}
    wrong += [(a, 0, int(points.get(a) or 0), 0, int(stored.get(a) or 0)) for a in sorted(orphans)]
    return n, wrong
