"""Public web forms: GET /forms/<id> shows the form, POST /forms/<id> saves a submission.

Checks run cheapest first and a refused submission writes nothing: unknown or disabled
form 404, too many submissions from the client 429, oversized body 413, missing or stale
form token 403 (the form is shown again, filled in, with a fresh token), honeypot filled
200 with the thank-you page and nothing saved, refused values 422 with the form again.
"""

from __future__ import annotations

import time

from flask import Blueprint, Response, current_app, g, request, url_for
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from sqlalchemy.orm import Session, sessionmaker
from werkzeug.exceptions import RequestEntityTooLarge

from addon.crm.records import ValidationError
from addon.crm.webform_models import WebForm
from addon.crm.webforms import (
    DEFAULT_THANK_YOU,
    FormField,
    client_key,
    count_hit,
    form_fields,
    published_form,
    submit,
)
from addon.db import get_session
from addon.web import form_pages

bp = Blueprint("forms", __name__)

TOKEN_INPUT = "csrf_token"
HONEYPOT_INPUT = "website"
_SALT = "web-form"


def _html(body: str, status: int = 200) -> Response:
    response = Response(body, status=status, mimetype="text/html")
    # The page holds a form token: never cache it. It may be framed by the customer's site,
    # but it loads nothing and posts only back here.
    response.headers["Cache-Control"] = "no-store"
    response.headers["Content-Security-Policy"] = (
        "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; base-uri 'none'"
    )
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "no-referrer"
    return response


def _not_found() -> Response:
    return _html(
        form_pages.message_page("Form not found", "This form does not exist or is closed."), 404
    )


def _serializer() -> URLSafeTimedSerializer | None:
    secret = current_app.config.get("SECRET_KEY")
    return URLSafeTimedSerializer(secret, salt=_SALT) if secret else None


def form_token(public_id: str) -> str:
    """A signed, time-stamped token tying a rendered page to its form."""
    serializer = _serializer()
    if serializer is None:
        raise RuntimeError("web forms need the SECRET_KEY setting (ADDON_SECRET_KEY)")
    return str(serializer.dumps(public_id))


def token_valid(token: str, public_id: str) -> bool:
    """Whether the token was made for this form within the allowed age."""
    serializer = _serializer()
    if serializer is None or not token or len(token) > 500:
        return False
    try:
        found = serializer.loads(token, max_age=current_app.config["FORMS_TOKEN_MAX_AGE_SECONDS"])
    except (SignatureExpired, BadSignature):
        return False
    return bool(found == public_id)


def client_address() -> str:
    """The submitting client's address, from the trusted proxy's X-Forwarded-For entry.

    Entries left of the ones our own proxies appended are written by the client and
    cannot be trusted, so only the configured number of hops from the right is read.
    """
    hops = int(current_app.config["FORMS_PROXY_HOPS"])
    if hops > 0:
        chain = [a.strip() for a in request.headers.get("X-Forwarded-For", "").split(",")]
        chain = [a for a in chain if a]
        if len(chain) >= hops:
            return chain[-hops]
    return request.remote_addr or ""


def _show(
    form: WebForm,
    fields: list[FormField],
    *,
    status: int = 200,
    values: form_pages.FormValues | None = None,
    errors: dict[str, str] | None = None,
    notice: str = "",
) -> Response:
    body = form_pages.form_page(
        form.name,
        fields,
        action=url_for("forms.post_form", public_id=form.public_id),
        token=form_token(form.public_id),
        values=values,
        errors=errors,
        notice=notice,
    )
    return _html(body, status)


def _unavailable() -> Response | None:
    if _serializer() is None:
        return _html(
            form_pages.message_page("Form unavailable", "Forms are not configured on this server."),
            503,
        )
    return None


@bp.get("/forms/<public_id>")
def get_form(public_id: str) -> Response:
    """The public form page."""
    refused = _unavailable()
    if refused is not None:
        return refused
    session = get_session()
    form = published_form(session, public_id)
    if form is None:
        return _not_found()
    return _show(form, form_fields(session, form))


def _count_submission(public_id: str) -> tuple[int, int] | None:
    """(submissions so far in this window, seconds left in it); None for no such form.

    Counted in a transaction of its own, committed before anything else, so refused and
    failing submissions count too.
    """
    window_seconds = max(1, int(current_app.config["FORMS_RATE_WINDOW_SECONDS"]))
    now = time.time()
    window = int(now // window_seconds)
    factory: sessionmaker[Session] = current_app.extensions["addon.sessionmaker"]
    with factory() as counting:
        form = published_form(counting, public_id)
        if form is None:
            return None
        key = client_key(str(current_app.config["SECRET_KEY"]), client_address())
        count = count_hit(counting, form.workspace_id, key, window)
        counting.commit()
    return count, int((window + 1) * window_seconds - now) + 1


@bp.post("/forms/<public_id>")
def post_form(public_id: str) -> Response:
    """A submission: checked, then saved with the thank-you page, or the form again."""
    refused = _unavailable()
    if refused is not None:
        return refused
    counted = _count_submission(public_id)
    if counted is None:
        return _not_found()
    count, retry_after = counted
    if count > int(current_app.config["FORMS_RATE_LIMIT"]):
        response = _html(
            form_pages.message_page(
                "Too many submissions",
                "This form was sent from your network too many times in a short while.",
                f"Please try again in {max(1, retry_after // 60)} minutes.",
            ),
            429,
        )
        response.headers["Retry-After"] = str(retry_after)
        return response
    limit = int(current_app.config["FORMS_MAX_BODY_BYTES"])
    too_large = _html(
        form_pages.message_page("Submission too large", "What was sent is too large to accept."),
        413,
    )
    if request.content_length is not None and request.content_length > limit:
        return too_large
    request.max_content_length = limit
    try:
        posted = request.form
    except RequestEntityTooLarge:
        return too_large
    session = get_session()
    form = published_form(session, public_id)
    if form is None:
        return _not_found()
    fields = form_fields(session, form)
    values = {ff.key: posted.getlist(form_pages.input_name(ff.key)) for ff in fields}
    if not token_valid(posted.get(TOKEN_INPUT, ""), form.public_id):
        return _show(
            form,
            fields,
            status=403,
            values=values,
            notice="This page was open too long or did not come from this site. "
            "Check your answers and send the form again.",
        )
    lines = [line for line in (form.thank_you or DEFAULT_THANK_YOU).splitlines() if line.strip()]
    thank_you = form_pages.message_page(form.name, *lines)
    if posted.get(HONEYPOT_INPUT, "").strip():
        # Only robots fill the hidden field; they are told it worked and nothing is kept.
        g.db_rollback = True
        return _html(thank_you)
    try:
        submit(session, form, values)
    except ValidationError as exc:
        g.db_rollback = True
        return _show(form, fields, status=422, values=values, errors=exc.errors)
    return _html(thank_you)
