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
from .customers import reveal_all
from .offload import page_work
from .rendering import render
from .security import current_actor, visitor

RECENT_FILES = 5


def _thresholds(request: Request) -> alerts.Thresholds:
    return alerts.Thresholds.from_settings(request.app.state.settings, visitor(request).timezone)


@get("/", opt={"action": Action.ACCOUNT_SELF})
async def home(request: Request) -> Response:
    st = request.app.state
    # On SQLite on the event loop, unless the append would wait (views/offload.py).
    template, context = await page_work(st.db, home_context, st, current_actor(request), visitor(request).timezone,
                                        _thresholds(request))
    return render(request, template, **context)


def home_context(st, actor, tz: str, thresholds: alerts.Thresholds) -> tuple[str, dict]:
    today = programme_today()
    if actor.role in ("salesperson", "leader"):
        # Read in a snapshot; then the reads' audit entries appended and committed in one short
        # write transaction (on SQLite the writer lock is held for those alone); then shown.
        with st.db.read() as s:
            figures, notes = sales.read_sales_home(s, st.vault, actor, today)
            recent = listing.read_page(s.connection(), st.vault, actor, limit=RECENT_FILES)
            service = service_tiles(s, actor, today)
        reveal_all(st.db, actor, (*notes, recent.audit))
        return "home/sales.html", dict(home=figures, recent=recent.rows, service=service)
    if actor.role == "customer_service":
        with st.db.read() as s:
            figures = desks.service_home(s, actor, today)
            service = service_tiles(s, actor, today)
        return "home/service.html", dict(home=figures, service=service)
    if actor.role == "auditor":
        day_start = sales.utc_midnight(today, ZoneInfo(tz))
        with st.db.read() as s:
            figures = desks.auditor_home(s, thresholds, day_start)
        return "home/auditor.html", dict(home=figures)
    if actor.role == "admin":
        with st.db.read() as s:
            figures = desks.admin_home(s)
        return "home/admin.html", dict(home=figures)
    return "welcome.html", {}


ROUTES = [home]
