"""Customer file pages and their HTMX fragments; each goes through the policy and the audit log."""
from __future__ import annotations

from functools import lru_cache
from typing import Annotated
from urllib.parse import quote, urlencode
from uuid import UUID

from litestar import Request, Response, get, post
from litestar.enums import RequestEncodingType
from litestar.params import Body, Parameter
from litestar.response import Redirect
from markupsafe import Markup

from .. import i18n
from ..access import service as access
from ..accounts.service import USERNAME_CHARS
from ..audit import service as audit
from ..customers import duplicates as existing, listing, rules
from ..customers import service as customers
from ..customers.models import PERSONAL_FIELDS
from ..customers.service import AuditNote
from ..policy import Action
from . import membership as member_views
from .offload import page_work
from .rendering import local_time, render
from .security import current_actor, visitor

Form = Annotated[dict[str, str], Body(media_type=RequestEncodingType.URL_ENCODED)]
EDITABLE = ("name", "gender", "mobile", "id_number", "birthday", "address", "employer",
            "position", "category", "notes")


def _t(errors: dict[str, str]) -> dict[str, str]:
    return {k: i18n.gettext(v) for k, v in errors.items()}


def reveal(db, actor, note: AuditNote) -> None:
    """Append and commit a read's audit entry in its own short write transaction (on SQLite the
    writer lock is held for the append alone, not for the page's reads). It raises if the entry
    cannot be written, and then nothing is shown: audit before reveal."""
    audit.append_committed(db, actor, note.action, object_type=note.object_type, object_id=note.object_id,
                           fields=note.fields, detail=note.detail, grant_id=note.grant_id)


def reveal_all(db, actor, notes) -> None:
    """`reveal` of several reads' entries, in order, in one short write transaction."""
    audit.append_all_committed(db, [(actor, n.action, audit.ALLOWED, {
        "object_type": n.object_type, "object_id": n.object_id, "fields": n.fields, "detail": n.detail,
        "grant_id": n.grant_id}) for n in notes])


@lru_cache(maxsize=4)
def list_labels(locale: str) -> dict:
    """The words of the list page, looked up once per locale instead of once per row."""
    _ = i18n.translations(locale).gettext
    return {"male": _("Male"), "female": _("Female"), "erased": _("Erased"),
            "categories": {c.value: labels[1] if locale == "zh_CN" else labels[0]
                           for c, labels in rules.CATEGORY_LABELS.items()},
            "tiers": {"regular": _("Regular"), "silver": _("Silver"), "gold": _("Gold"), "platinum": _("Platinum")},
            "sorts": {"created": _("Created"), "file_no": _("File no."), "category": _("Category"),
                      "tier": _("Tier"), "owner": _("Owner")}}


@lru_cache(maxsize=4)
def _file_words(locale: str) -> dict:
    _ = i18n.translations(locale).gettext
    return {"fields": {"name": _("Full name"), "mobile": _("Mobile"), "id_number": _("ID number"),
                       "birthday": _("Birthday"), "address": _("Address"), "employer": _("Employer"),
                       "position": _("Position"), "notes": _("Spending profile")},
            "cancel": _("Cancel"), "edit": _("Edit"), "save": _("Save"), "male": _("Male"), "female": _("Female"),
            "categories": list_labels(locale)["categories"]}


def file_words() -> dict:
    """The words of a file's card and its fields in the request's language (a template global),
    looked up once per language: not per render, and not once per process either (a template
    module imported without context is cached, so words set at its top would keep the language
    of the first request that imported it)."""
    return _file_words(i18n.current_locale.get())


# Jinja2's autoescape (markupsafe), character for character, in one str.translate per value.
_ESCAPE = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&#34;", "'": "&#39;"})
_ROW = ('    <tr>\n      <td><a href="/customers/{0}">{1}</a></td>\n      <td>{2}</td>\n      <td>{3}</td>\n'
        '      <td>{4}</td>\n      <td>{5}</td>\n      <td>{6}</td>\n      <td>{7}</td>\n      <td>{8}</td>\n'
        '    </tr>\n')


def list_table(rows, labels: dict, tz: str) -> Markup:
    """The list's rows as HTML, each value escaped as the template would (the time in the viewer's
    zone, gender, category and tier in words, the zone and the words looked up once): filled into
    one row stencil in Python instead of about ten escaped template expressions per row."""
    male, female, categories, tiers = labels["male"], labels["female"], labels["categories"], labels["tiers"]
    when = local_time(tz)
    erased = '<span class="badge" data-testid="erased">' + labels["erased"].translate(_ESCAPE) + "</span>"
    return Markup("".join(_ROW.format(
        r.id, str(r.file_no).translate(_ESCAPE), erased if r.erased else str(r.name).translate(_ESCAPE),
        (male if r.gender == "M" else female).translate(_ESCAPE), str(r.mobile).translate(_ESCAPE),
        categories.get(r.category, "").translate(_ESCAPE), (tiers.get(r.tier, r.tier) if r.tier else "—").translate(_ESCAPE),
        str(r.owner).translate(_ESCAPE), when(r.created_at).translate(_ESCAPE)) for r in rows))


@lru_cache(maxsize=256)
def list_links(lq: listing.ListQuery, owners: bool, locale: str) -> dict:
    """The list's links that keep its order and filters, built once per order, filters and language
    (no personal data in them) instead of by macros over `lq.params()` on each render: each
    column's heading with, for those that sort, its link, `aria-sort` and arrow; the parameters
    the search and pager forms carry."""
    _ = i18n.translations(locale).gettext
    params = lq.params()
    heads = []
    # The columns in order, with the sort key of those that sort (the owner's only for a leader).
    columns = (("file_no", _("File no.")), ("", _("Name")), ("", _("Gender")), ("", _("Mobile")),
               ("category", _("Category")), ("tier", _("Tier")), ("owner", _("Owner")), ("created", _("Created")))
    for key, label in columns:
        if not key or (key == "owner" and not owners):
            heads.append((label, "", "", ""))
            continue
        active = lq.sort == key
        url = "/customers?" + urlencode(lq.params(sort=key, direction="asc" if active and lq.direction == "desc"
                                                  else "desc"))
        heads.append((label, url, ("ascending" if lq.direction == "asc" else "descending") if active else "",
                      (" ↑" if lq.direction == "asc" else " ↓") if active else ""))
    return {"params": tuple(params.items()), "heads": tuple(heads),
            "first_url": "/customers" + ("?" + urlencode(params) if params else ""),
            "next_prefix": "/customers?" + (urlencode(params) + "&" if params else "") + "after="}


def list_context(st, actor, q: str, after: str | None, params, *, locale: str, tz: str) -> dict:
    """The list page: read in a snapshot (a read transaction), then its audit entry appended and
    committed, then (by the caller) rendered."""
    lq = listing.ListQuery.from_params(params)
    with st.db.raw_read() as conn:  # the driver's connection: prebuilt statements only (driver_sql.py)
        page = listing.read_page(conn, st.vault, actor, q=q, cursor=after, limit=st.settings.page_size, query=lq)
        owners = listing.owner_choices(conn, actor)
    reveal(st.db, actor, page.audit)
    labels = list_labels(locale)
    links = list_links(lq, bool(owners), locale)
    return dict(page=page, q=q, after=after, lq=lq, owners=owners, tiers=listing.TIERS, sorts=listing.SORTS,
                labels=labels, table=list_table(page.rows, labels, tz), links=links,
                next_url=links["next_prefix"] + quote(page.next_cursor) if page.next_cursor else "")


async def _list(request: Request, q: str, after: str | None, params) -> Response:
    v = visitor(request)
    st = request.app.state
    # On SQLite on the event loop, unless the append would wait (views/offload.py).
    context = await page_work(st.db, list_context, st, current_actor(request), q, after, params,
                              locale=v.locale, tz=v.timezone)
    return render(request, "customers/list.html", fragment="customers/_results.html", **context)


@get("/customers", opt={"action": Action.CUSTOMER_LIST})
async def list_customers(request: Request, q: str = "", after: str | None = None) -> Response:
    """Order and filters travel in the URL (`sort`, `dir`, `category`, `tier`, `owner`, `granted`),
    so Back and a bookmark return to the same list; a search text never does (see below)."""
    return await _list(request, q, after, request.query_params)


@post("/customers/search", opt={"action": Action.CUSTOMER_LIST}, status_code=200)
async def search_customers(request: Request, data: Form) -> Response:
    """Search by POST so a phone or ID number never sits in a URL, the browser history or a log."""
    return await _list(request, data.get("q", ""), data.get("after") or None, data)


@get("/customers/new", opt={"action": Action.CUSTOMER_CREATE})
async def new_customer_form(request: Request) -> Response:
    return render(request, "customers/form.html", form={}, errors={}, file=None,
                  categories=rules.CATEGORY_LABELS)


@post("/customers/new", opt={"action": Action.CUSTOMER_CREATE}, sync_to_thread=True)
def create_customer(request: Request, data: Form) -> Response:
    actor = current_actor(request)
    st = request.app.state
    form = {k: data.get(k, "") for k in EDITABLE}
    try:
        value = customers.validate_form(data)
        with st.db.write() as s:
            duplicates = existing.check_duplicates(s, st.vault, actor, value)
            if not duplicates:
                f = customers.create_file(s, st.vault, actor, value)
    except customers.InvalidInput as exc:
        return render(request, "customers/form.html", status=400, form=form, errors=_t(exc.errors),
                      file=None, categories=rules.CATEGORY_LABELS)
    if duplicates:
        # Only file numbers and owners are shown: no personal data of someone else's file.
        return render(request, "customers/form.html", status=409, form=form, errors={},
                      duplicates=duplicates, file=None, categories=rules.CATEGORY_LABELS)
    return Redirect(path=f"/customers/{f.id}", status_code=303)


def file_context(st, actor, file_id: UUID) -> dict:
    """The file page: read in a snapshot, then its audit entry appended and committed, then (by
    the caller) rendered."""
    with st.db.read() as s:
        card, note = customers.read_file(s, st.vault, actor, file_id)
        # The owner and the leaders above see who holds (or asks for) access, and until when.
        grants = (access.grants_on_file(s, card.id)
                  if card.owner_id == actor.user_id or "customer.reassign" in card.allowed else None)
        # The membership section, read in the same snapshot.
        membership = member_views.file_context(s, actor, file_id, card)
    reveal(st.db, actor, note)
    return dict(card=card, categories=rules.CATEGORY_LABELS, grants=grants, membership=membership)


@get("/customers/{file_id:uuid}", opt={"action": Action.CUSTOMER_VIEW})
async def view_customer(request: Request, file_id: UUID) -> Response:
    st = request.app.state
    context = await page_work(st.db, file_context, st, current_actor(request), file_id)
    return render(request, "customers/detail.html", fragment="customers/_card.html", **context)


@get("/customers/{file_id:uuid}/edit", opt={"action": Action.CUSTOMER_EDIT}, sync_to_thread=True)
def edit_customer_form(request: Request, file_id: UUID) -> Response:
    actor = current_actor(request)
    st = request.app.state
    with st.db.read() as s:
        card, note = customers.read_file(s, st.vault, actor, file_id, action=Action.CUSTOMER_EDIT,
                                         purpose="edit form")
    reveal(st.db, actor, note)
    form = {**{k: v or "" for k, v in card.fields.items()}, "gender": card.gender,
            "category": card.category}
    return render(request, "customers/form.html", form=form, errors={}, file=card,
                  categories=rules.CATEGORY_LABELS)


@post("/customers/{file_id:uuid}/edit", opt={"action": Action.CUSTOMER_EDIT}, sync_to_thread=True)
def update_customer(request: Request, file_id: UUID, data: Form) -> Response:
    actor = current_actor(request)
    st = request.app.state
    try:
        value = customers.validate_form(data)
        with st.db.write() as s:
            customers.update_file(s, st.vault, actor, file_id, value)
    except customers.InvalidInput as exc:
        with st.db.read() as s:  # authorise before echoing anything back
            f = customers.get_file_for(s, actor, file_id, Action.CUSTOMER_EDIT)
        form = {k: data.get(k, "") for k in EDITABLE}
        return render(request, "customers/form.html", status=400, form=form, errors=_t(exc.errors),
                      file=f, categories=rules.CATEGORY_LABELS)
    return Redirect(path=f"/customers/{file_id}", status_code=303)


@get("/customers/{file_id:uuid}/fields/{field:str}", opt={"action": Action.CUSTOMER_VIEW},
     sync_to_thread=True)
def field_fragment(request: Request, file_id: UUID, field: str, edit: bool = False) -> Response:
    """One field, shown or as an inline editor (HTMX); audited like the page."""
    if field not in PERSONAL_FIELDS:
        raise customers.NotFound(field)
    actor = current_actor(request)
    st = request.app.state
    action = Action.CUSTOMER_EDIT if edit else Action.CUSTOMER_VIEW
    with st.db.read() as s:
        card, note = customers.read_file(s, st.vault, actor, file_id, fields=(field,), action=action,
                                         purpose="inline edit" if edit else "")
    reveal(st.db, actor, note)
    return render(request, "customers/_field.html", field=field, value=card.fields[field] or "",
                  card=card, editing=edit, error="")


@post("/customers/{file_id:uuid}/fields/{field:str}", opt={"action": Action.CUSTOMER_EDIT},
      sync_to_thread=True)
def update_field(request: Request, file_id: UUID, field: str, data: Form) -> Response:
    if field not in PERSONAL_FIELDS:
        raise customers.NotFound(field)
    actor = current_actor(request)
    st = request.app.state
    new_value = data.get("value", "")
    try:
        with st.db.write() as s:
            customers.update_field(s, st.vault, actor, file_id, field, new_value)
            card = customers.view_file(s, st.vault, actor, file_id, fields=(field,))
    except customers.InvalidInput as exc:
        with st.db.read() as s:
            f = customers.get_file_for(s, actor, file_id, Action.CUSTOMER_EDIT)
        return render(request, "customers/_field.html", status=400, field=field, value=new_value,
                      card=f, editing=True, error=i18n.gettext(next(iter(exc.errors.values()))))
    return render(request, "customers/_field.html", field=field, value=card.fields[field] or "",
                  card=card, editing=False, error="")


@post("/customers/{file_id:uuid}/reassign", opt={"action": Action.CUSTOMER_REASSIGN},
      sync_to_thread=True)
def reassign_customer(request: Request, file_id: UUID, data: Form) -> Response:
    actor = current_actor(request)
    st = request.app.state
    try:
        with st.db.write() as s:
            customers.reassign_file(s, actor, file_id, data.get("owner", ""), data.get("reason", ""))
    except customers.InvalidInput as exc:
        with st.db.write() as s:
            card = customers.view_file(s, st.vault, actor, file_id)
            membership = member_views.file_context(s, actor, file_id)
        return render(request, "customers/detail.html", status=400, card=card,
                      reassign_errors=_t(exc.errors), reassign_form=data,
                      categories=rules.CATEGORY_LABELS, membership=membership)
    return Redirect(path=f"/customers/{file_id}", status_code=303)


ROUTES = [list_customers, search_customers, new_customer_form, create_customer, view_customer,
          edit_customer_form, update_customer, field_fragment, update_field, reassign_customer]


@get("/customers/reassign", opt={"action": Action.CUSTOMER_REASSIGN})
async def reassign_all_form(request: Request, moved: int | None = None, from_: str = Parameter(query="from", default=""),
                            to: str = "") -> Response:
    """The form; after a reassignment (POST/redirect/GET) also what it moved, from the address:
    a count and two usernames, nothing about any customer."""
    names_ok = all(n and set(n) <= USERNAME_CHARS for n in (from_, to))
    return render(request, "customers/reassign.html", form={}, errors={},
                  moved=moved if moved is not None and names_ok else None, moved_from=from_, moved_to=to)


@post("/customers/reassign", opt={"action": Action.CUSTOMER_REASSIGN}, sync_to_thread=True)
def reassign_all(request: Request, data: Form) -> Response:
    """A leader hands every file of a departing salesperson to another, with a reason."""
    actor = current_actor(request)
    form = {k: data.get(k, "") for k in ("from", "owner", "reason")}
    try:
        with request.app.state.db.write() as s:
            moved = customers.reassign_all(s, actor, form["from"], form["owner"], form["reason"])
    except customers.InvalidInput as exc:
        return render(request, "customers/reassign.html", status=400, form=form,
                      errors=_t(exc.errors), moved=None)
    done = urlencode({"moved": moved, "from": form["from"].strip().lower(), "to": form["owner"].strip().lower()})
    return Redirect(path=f"/customers/reassign?{done}", status_code=303)


ROUTES += [reassign_all_form, reassign_all]
