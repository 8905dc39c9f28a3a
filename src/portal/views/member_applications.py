"""Applying for membership on a file, and a leader's exception to the joining condition."""
from __future__ import annotations

from uuid import UUID

from litestar import Request, Response, post

from ..membership import applications
from ..policy import Action
from .membership import R, Form, _step


@post(R + "/apply", opt={"action": Action.MEMBER_APPLY}, sync_to_thread=True)
def apply_for_membership(request: Request, file_id: UUID, data: Form) -> Response:
    return _step(request, file_id, data, form="apply", fields=("card_type", "note", "referrer_card"),
                 run=lambda s, a, v: applications.submit_application(
                     s, a, file_id, card_type=data.get("card_type", ""), note=data.get("note", ""),
                     referrer_card=data.get("referrer_card", "")))


@post(R + "/applications/{application_id:int}/exception", opt={"action": Action.MEMBER_EXCEPTION},
      sync_to_thread=True)
def grant_application_exception(request: Request, file_id: UUID, application_id: int, data: Form) -> Response:
    """A leader above the file waives the joining condition (with a reason) for customer service's review."""
    def run(s, actor, vault):
        app = applications.pending_application_of(s, file_id)
        if app is None or app.id != application_id:
            raise applications.NotFound("no such pending application on this file")
        applications.grant_exception(s, actor, application_id, data.get("reason", ""))
    return _step(request, file_id, data, form="exception", fields=("reason", "application"), run=run)


ROUTES = [apply_for_membership, grant_application_exception]
