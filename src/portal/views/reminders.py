"""Each salesperson's (and leader's) reminder lists: points about to expire, birthdays this week."""
from __future__ import annotations

from litestar import Request, Response, get

from ..audit.deferred import read_then_audit
from ..membership import overview, programme
from ..membership.rules import programme_today
from ..policy import Action
from .rendering import render
from .security import current_actor


@get("/members/expiring", opt={"action": Action.MEMBER_LISTS}, sync_to_thread=True)
def points_due_to_expire(request: Request) -> Response:
    """Members in the viewer's scope (by the policy, in SQL) whose points expire soon; audited."""
    actor = current_actor(request)
    st = request.app.state
    with read_then_audit(st.db) as s:
        rows = overview.due_to_expire(s, st.vault, actor)
        days = programme.current_settings(s).expiry_warning_days
    return render(request, "reminders/expiring.html", rows=rows, days=days, today=programme_today())


@get("/members/birthdays", opt={"action": Action.MEMBER_LISTS}, sync_to_thread=True)
def birthdays_this_week(request: Request) -> Response:
    """Members in the viewer's scope whose birthday falls this week (Monday to Sunday); audited."""
    actor = current_actor(request)
    st = request.app.state
    today = programme_today()
    with read_then_audit(st.db) as s:
        rows = overview.birthdays_this_week(s, st.vault, actor, today)
    start, end = overview.week_of(today)
    return render(request, "reminders/birthdays.html", rows=rows, start=start, end=end, today=today)


ROUTES = [points_due_to_expire, birthdays_this_week]
