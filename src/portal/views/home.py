"""`/`: each role's home page (the figures come from portal.home, computed in SQL within scope)."""
from __future__ import annotations

from zoneinfo import ZoneInfo

from litestar import Request, Response, get

from ..audit import alerts
from ..customers import listing
from ..home import desks, sales
from ..home.member_service import service_tiles
from ..membership.rules import programme_today
from ..policy import Action
from .customers import reveal
from .rendering import render
from .security import current_actor, visitor

RECENT_FILES = 5


def _thresholds(request: Request) -> alerts.Thresholds:
    return alerts.Thresholds.from_settings(request.app.state.settings, visitor(request).timezone)


@get("/", opt={"action": Action.ACCOUNT_SELF}, sync_to_thread=True)
def home(request: Request) -> Response:
    actor = current_actor(request)
    st = request.app.state
    today = programme_today()
    if actor.role in ("salesperson", "leader"):
        # Read in a snapshot; then the reads' audit entries appended and committed, each in a
        # short write transaction (on SQLite the writer lock is held for those alone); then shown.
        with st.db.read() as s:
            figures, notes = sales.read_sales_home(s, st.vault, actor, today)
            recent = listing.read_page(s.connection(), st.vault, actor, limit=RECENT_FILES)
            service = service_tiles(s, actor, today)
        for note in (*notes, recent.audit):
            reveal(st.db, actor, note)
        return render(request, "home/sales.html", home=figures, recent=recent.rows, service=service)
    if actor.role == "customer_service":
        with st.db.read() as s:
            figures = desks.service_home(s, actor, today)
            service = service_tiles(s, actor, today)
        return render(request, "home/service.html", home=figures, service=service)
    if actor.role == "auditor":
        day_start = sales.utc_midnight(today, ZoneInfo(visitor(request).timezone))
        with st.db.read() as s:
            figures = desks.auditor_home(s, _thresholds(request), day_start)
        return render(request, "home/auditor.html", home=figures)
    if actor.role == "admin":
        with st.db.read() as s:
            figures = desks.admin_home(s)
        return render(request, "home/admin.html", home=figures)
    return render(request, "welcome.html")


ROUTES = [home]
