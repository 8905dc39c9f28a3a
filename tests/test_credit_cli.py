"""`portal receivables list/import` and `portal purchases import` on credit, in-process."""
from __future__ import annotations

import uuid

from sqlalchemy import func, select

from portal.credit.models import CreditOrder, ReceivableEntry

from .test_credit import grant, sell
from .test_credit_web import shop  # noqa: F401  (fixture)
from .test_membership_cli import HEADER, cli_env, csv_file, file_no, invoke  # noqa: F401


def test_purchases_import_on_credit_obeys_the_limit(cli_env, db, story, shop, tmp_path):  # noqa: F811
    fid = grant(db, story)
    no = file_no(db, str(fid))
    over = csv_file(tmp_path, f"P-C1,2026-03-10,,{no},MT53,36,1499.00,,,credit")  # 6 boxes > 5
    r = invoke("purchases", "import", str(over), "--as", "alice")
    assert r.exit_code == 1 and "the limit is 5 boxes, 0 are outstanding" in r.output
    free = csv_file(tmp_path, f"P-C2,2026-03-10,,{no},红酒,6,99.00,,,credit", name="free.csv")
    r = invoke("purchases", "import", str(free), "--as", "alice")
    assert r.exit_code == 1 and "catalogue product" in r.output
    ok = csv_file(tmp_path, f"P-C3,2026-03-10,,{no},MT53,30,1499.00,,,赊账", name="ok.csv")
    assert invoke("purchases", "import", str(ok), "--as", "alice").exit_code == 0
    with db.read() as s:
        assert s.scalar(select(CreditOrder.boxes)) == 5


def test_receivables_import_is_all_or_nothing_and_the_board_lists_it(cli_env, db, vault, story, shop,  # noqa: F811
                                                                    tmp_path):
    from portal.credit import receivables
    fid = grant(db, story)
    oid = sell(db, vault, story, fid, 1, "CR-S1")
    with db.write() as s:
        receivables.deliver(s, story.actor(db, "alice"), oid)
    statement = tmp_path / "bank.csv"
    statement.write_text("order,file_no,date,amount,method,reference\n"
                         "CR-S1,,2026-03-10,1000.00,transfer,BANK-1\n"
                         "NOPE,,2026-03-10,1.00,transfer,BANK-2\n", encoding="utf-8")
    r = invoke("receivables", "import", str(statement), "--as", "alice")
    assert r.exit_code == 1 and "line 3" in r.output
    no = file_no(db, str(fid))
    statement.write_text("order,file_no,date,amount,method,reference\n"
                         f",{no},2026-03-10,1000.00,transfer,BANK-1\n", encoding="utf-8")
    assert invoke("receivables", "import", str(statement), "--as", "alice", "--dry-run").exit_code == 0
    with db.read() as s:
        assert s.scalar(select(func.count()).select_from(ReceivableEntry)) == 1  # the charge only
    assert invoke("receivables", "import", str(statement), "--as", "alice").exit_code == 0
    r = invoke("receivables", "list", "--as", "alice")
    assert r.exit_code == 0 and "CR-S1" in r.output and "¥7,994.00" in r.output
    r = invoke("receivables", "list", "--as", "charlie")
    assert "CR-S1" not in r.output
