"""The browser labeler: a FastAPI app over a :class:`~activeprop.labeling.LabelingSession`.

The app holds no labeling logic: every route validates its input and calls the session's
public methods. Errors a client can cause (:class:`~activeprop.errors.UserError`) get a 4xx
with a one-line ``detail``: an unknown item is 404, a label that is not a class of the
project 422, a malformed request 422, nothing to undo 409, a missing token 401, a foreign
``Host`` 400. Anything else is a bug: a 500, with the traceback in the server's log.

Safe by default: a Content-Security-Policy allows only the app's own script and styles
(the page inserts every server-provided string as text); requests must name the host the
server is bound to (a DNS-rebinding page cannot reach a server on 127.0.0.1); with a token
the printed URL sets an HttpOnly, SameSite=Strict cookie once and redirects to a URL
without it; nothing that changes state is a GET.
"""

from __future__ import annotations

import hmac
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import urlencode

from fastapi import Body, FastAPI, Query, Request
from fastapi import Path as PathParam
from fastapi.responses import FileResponse, JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, Field
from starlette.middleware.trustedhost import TrustedHostMiddleware

from ..errors import Conflict, UnknownItem, UserError
from ..labeling import LabelingSession

HERE = Path(__file__).parent
MAX_ITEM_ID = 2**53  # item ids are pool positions; anything larger is unknown, not an error
ItemId = Annotated[int, PathParam(ge=0, le=MAX_ITEM_ID, description="the item's pool position")]
Client = Annotated[str, Query(min_length=1, max_length=100, description="who is labeling")]


class LabelIn(BaseModel):
    """A human label for one item."""

    item_id: int = Field(ge=0, le=MAX_ITEM_ID)
    label: int | str = Field(description="a class name, or a class index")
    annotator: str = Field("default", min_length=1, max_length=100)


class QueueIn(BaseModel):
    """Ask for the next items to label; they are leased to ``client``."""

    n: int = Field(5, ge=1, le=100)
    client: str = Field("default", min_length=1, max_length=100)
    skip: list[int] = Field([], max_length=1000, description="items this client passed over")


class PriorsIn(BaseModel):
    """The share of each class: "uniform", shares in class order ("30,70"), or null."""

    class_priors: str | None = Field(None, max_length=2000)


class ClassIn(BaseModel):
    """A class to add to the project."""

    name: str = Field(min_length=1, max_length=100)


class UndoIn(BaseModel):
    """Whose latest label to undo."""

    annotator: str = Field("default", min_length=1, max_length=100)


class FieldValue(BaseModel):
    """One of a table row's values, under its column's name (null: the cell is missing)."""

    name: str
    value: float | None


class QueueEntry(BaseModel):
    id: int
    prediction: str | None
    confidence: float
    path: str | None = Field(None, description="the item's file, relative to the dataset")
    text: str | None = Field(None, description="the item's text")
    fields: list[FieldValue] | None = Field(
        None, description="a table's item: its values under the columns' names, in order")


class QueueOut(BaseModel):
    items: list[QueueEntry]
    model_version: int


class LabelOut(BaseModel):
    event_id: int
    item_id: int
    label: str
    second_opinion: bool
    model_version: int


class CurrentLabel(BaseModel):
    item_id: int
    label: str


class LabelsOut(BaseModel):
    labels: list[CurrentLabel]


class UndoOut(BaseModel):
    event_id: int
    item_id: int
    label: str | None
    model_version: int


TOKEN_COOKIE = "activeprop_token"
LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")
# The page's own script and styles only; pictures are the app's (or data: URLs).
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self'; "
                               "img-src 'self' data:; connect-src 'self'; object-src 'none'; "
                               "base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}


def allowed_hosts(bound_host: str) -> list[str]:
    """The ``Host`` names a server bound to ``bound_host`` answers to: the loopback names
    for a local address; any name for a wildcard address (where a token is required)."""
    if bound_host in ("0.0.0.0", "::"):
        return ["*"]
    if bound_host in LOCAL_HOSTS:
        return ["127.0.0.1", "localhost", "[::1]"]
    return [bound_host]


def create_app(session: LabelingSession, token: str | None = None,
               host: str = "127.0.0.1") -> FastAPI:
    """The app for one open project, served on ``host``.

    With ``token``, every request must carry it: in the cookie that opening
    ``/?token=TOKEN`` sets, or as ``Authorization: Bearer TOKEN``.
    """
    app = FastAPI(title="activeprop labeler", version="2", docs_url=None, redoc_url=None,
                  description="Label a pool with active learning and label spreading.")
    app.state.session = session
    _add_token_check(app, token)
    _add_security_headers(app)
    # Added last, so checked first: a foreign Host never reaches the token check.
    app.add_middleware(TrustedHostMiddleware, allowed_hosts=allowed_hosts(host))
    _add_error_handlers(app)
    _add_api(app, session)
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")

    @app.get("/", include_in_schema=False)
    def page():
        return FileResponse(HERE / "templates" / "index.html")

    @app.get("/docs", include_in_schema=False)
    def docs():
        """The API's endpoints, read from /openapi.json by a local page (no CDN)."""
        return FileResponse(HERE / "templates" / "docs.html")

    return app


def _add_api(app: FastAPI, session: LabelingSession) -> None:
    @app.get("/api/state")
    def state() -> dict:
        """Pool size, labels so far, model version, classes and the learning curve."""
        return session.state()

    @app.post("/api/queue", response_model=QueueOut)
    def queue(body: Annotated[QueueIn, Body()] = QueueIn()):
        """The next items to label, leased to ``client`` so others get different ones."""
        items = session.queue(body.n, body.client, body.skip)
        return {"items": [vars(item) for item in items], "model_version": session.model_version}

    @app.post("/api/labels", status_code=201, response_model=LabelOut,
              responses={404: {"description": "no such item"},
                         422: {"description": "not a class of the project"}})
    def add_label(body: LabelIn):
        """Save a label (committed to disk before the answer), then refit the model."""
        return session.add_label(body.item_id, body.label, body.annotator)

    @app.get("/api/labels", response_model=LabelsOut)
    def labels():
        """The current human label of every labeled item."""
        return {"labels": session.human_labels()}

    @app.post("/api/undo", response_model=UndoOut,
              responses={409: {"description": "nothing to undo"}})
    def undo(body: Annotated[UndoIn, Body()] = UndoIn()):
        """Undo the annotator's latest label (recorded as a new event)."""
        done = session.undo(body.annotator)
        if done is None:
            raise Conflict(f"{body.annotator!r} has no label to undo")
        return done

    @app.post("/api/classes", status_code=201,
              responses={409: {"description": "already a class"}})
    def add_class(body: ClassIn) -> dict:
        """Add a class (a project may start with none); returns the state."""
        return session.add_class(body.name)

    @app.put("/api/settings/class-priors",
             responses={422: {"description": "not a valid prior for this project's model"}})
    def class_priors(body: PriorsIn) -> dict:
        """Declare (or withdraw) the class shares Poisson learning should match; refits."""
        return session.set_class_priors(body.class_priors)

    @app.get("/api/review")
    def review(threshold: Annotated[float, Query(gt=0, le=1)] = 0.5) -> dict:
        """Human labels the other labels disagree with (held out on the graph)."""
        return {"labels": session.review(threshold)}

    @app.get("/api/items")
    def items(label: Annotated[str | None, Query(max_length=200)] = None,
              min_confidence: Annotated[float, Query(ge=0, le=1)] = 0.0,
              max_confidence: Annotated[float, Query(ge=0, le=1)] = 1.0,
              offset: Annotated[int, Query(ge=0, le=MAX_ITEM_ID)] = 0,
              limit: Annotated[int, Query(ge=1, le=5000)] = 500) -> dict:
        """The pool overview: every item's final label, confidence and source."""
        return session.items(label, min_confidence, max_confidence, offset, limit)

    @app.get("/api/items/{item_id}", responses={404: {"description": "no such item"}})
    def item(item_id: ItemId) -> dict:
        """One item: prediction, confidence, human label and its label events."""
        return session.item(item_id)

    @app.get("/api/items/{item_id}/image", response_class=Response,
             responses={200: {"content": {"image/png": {}}}, 404: {"description": "no image"}})
    def image(item_id: ItemId):
        """The item's picture as PNG (colour and aspect ratio kept for image folders)."""
        picture = session.picture_png(item_id)
        if picture is None:
            raise UnknownItem("this project has no images")
        return Response(picture, media_type="image/png")

    @app.get("/api/export", response_class=Response,
             responses={200: {"content": {"text/csv": {}, "application/x-ndjson": {}}}})
    def export(format: Literal["csv", "jsonl"] = "csv",  # noqa: A002 - the API's word
               min_confidence: Annotated[float, Query(ge=0, le=1)] = 0.0):
        """Every item with its final label, source, confidence and human label events."""
        media = {"csv": "text/csv", "jsonl": "application/x-ndjson"}[format]
        return Response(session.export(format, min_confidence), media_type=media,
                        headers={"Content-Disposition": f"attachment; filename=labels.{format}"})


def _add_token_check(app: FastAPI, token: str | None) -> None:
    if token is None:
        return
    expected = token.encode()

    def valid(given: str | None) -> bool:
        return given is not None and hmac.compare_digest(given.encode(), expected)

    @app.middleware("http")
    async def require_token(request: Request, call_next):
        header = request.headers.get("authorization", "")
        bearer = header[7:] if header.lower().startswith("bearer ") else None
        if valid(request.cookies.get(TOKEN_COOKIE)) or valid(bearer):
            return await call_next(request)
        if request.method == "GET" and valid(request.query_params.get("token")):
            # The printed URL, opened once: keep the token in a cookie and take it out of
            # the address bar (and so out of history, bookmarks and Referer headers).
            rest = [(k, v) for k, v in request.query_params.multi_items() if k != "token"]
            target = request.url.path + ("?" + urlencode(rest) if rest else "")
            response = RedirectResponse(target, status_code=303)
            response.set_cookie(TOKEN_COOKIE, token, httponly=True, samesite="strict",
                                path="/")
            return response
        return JSONResponse({"detail": "missing or wrong token: open the URL the server "
                                       "printed, or send Authorization: Bearer TOKEN"},
                            status_code=401)


def _add_security_headers(app: FastAPI) -> None:
    @app.middleware("http")
    async def security_headers(request: Request, call_next):
        response = await call_next(request)
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        return response


def _add_error_handlers(app: FastAPI) -> None:
    """Only user errors become 4xx; anything else stays a 500 with its traceback logged."""
    statuses = {UnknownItem: 404, Conflict: 409, UserError: 422}
    for error_type, status in statuses.items():
        def handler(request: Request, error: UserError, status=status):
            return JSONResponse({"detail": str(error).strip("'\"")}, status_code=status)

        app.add_exception_handler(error_type, handler)
