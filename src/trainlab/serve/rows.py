"""``trainlab serve`` for a table's model: a JSON API that takes rows as objects.

Example:
    $ curl -s localhost:8000/api/predict -H 'Content-Type: application/json' \\
        -d '{"age": 41, "city": "Lyon"}'
    {"label": "yes", "probability": 0.91, ...}

``POST /api/predict`` takes one row (an object: column name -> number, text or null) or a list
of them, and answers one prediction, or ``{"predictions": [...]}`` for a list. Each row is
encoded by the run's recorded rules; a missing column or a cell that is not a number where one
is expected answers 400 naming it. The page at / says what the API takes: a form for every
column is left to the JSON API. The limits (body size, requests in flight, API key) are the
image server's (``trainlab.serve.app``).
"""

from __future__ import annotations

import html
import json
import time
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse

from trainlab.inference import Prediction, Predictor
from trainlab.serve.app import Limits, Service, _add_error_handlers, batch_reply
from trainlab.serve.requests import ApiError, BodyLimit, RequestLog

ROWS_BODY = {
    "requestBody": {
        "required": True,
        "description": "one row as an object (column name -> number, text or null), or a list "
        "of rows",
        "content": {
            "application/json": {
                "schema": {
                    "oneOf": [
                        {"type": "object"},
                        {"type": "array", "items": {"type": "object"}},
                    ]
                }
            }
        },
    }
}


class RowService(Service):
    """The image server's service, for rows: no preview, and the rows checked as JSON."""

    def run_predictions(
        self,
        images: list[Any],
        names: list[str],
        reject: bool = False,  # noqa: ARG002 - rows have no "none of these"
    ) -> list[Prediction]:
        return self.predictor.predict(images, names)

    @staticmethod
    def response(result: Prediction, began: float) -> dict[str, Any]:
        if result.value is not None:  # a numeric target, in its own units
            return {"value": result.value, "milliseconds": _since(began)}
        return {
            "label": result.label,
            "index": result.index,
            "probability": result.probability,
            "low_confidence": result.low_confidence,
            "top": [{"label": c, "probability": p} for c, p in result.top],
            "probabilities": result.probabilities,
            "milliseconds": _since(began),
        }


def _since(began: float) -> float:
    return round(1000 * (time.perf_counter() - began), 2)


async def read_rows(request: Request, max_batch: int) -> tuple[list[dict], list[str], bool]:
    """The rows of a JSON body, their names ("row 1", ...), and whether it was one row."""
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind != "application/json":
        raise ApiError(
            415,
            f"content type '{kind or 'none'}' is not supported: this model takes rows as JSON "
            "(an object of column name -> value, or a list of them)",
        )
    try:
        payload = json.loads(await request.body())
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise ApiError(400, "the JSON body does not parse") from None
    single = isinstance(payload, dict)
    rows = [payload] if single else payload
    if not isinstance(rows, list) or not rows or not all(isinstance(r, dict) for r in rows):
        raise ApiError(
            400, 'JSON needs a row {"column": value, ...} or a non-empty list of such rows'
        )
    if len(rows) > max_batch:
        raise ApiError(413, f"{len(rows)} rows; a call takes at most {max_batch}")
    return rows, [f"row {i + 1}" for i in range(len(rows))], single


def rows_page(described: dict[str, Any], columns: list[str]) -> str:
    example = json.dumps({name: None for name in columns[:4]})
    listed = ", ".join(html.escape(c) for c in columns)
    classes = described.get("classes") or []
    answers = (
        f"<p>Classes: {', '.join(html.escape(c) for c in classes)}.</p>"
        if classes
        else '<p>It answers a number, in the target\'s units: {"value": ...}.</p>'
    )
    return (
        "<!doctype html><html><head><meta charset='utf-8'><title>trainlab: "
        f"{html.escape(str(described.get('run')))}</title></head><body>"
        f"<h1>{html.escape(str(described.get('run')))}</h1>"
        "<p>This run takes rows of a table; use the JSON API: <code>POST /api/predict</code> "
        f"with one row as an object, e.g. <code>{html.escape(example)}</code>, or a list of "
        "rows. The schema is at <a href='/openapi.json'>/openapi.json</a>.</p>"
        f"<p>Columns: {listed}.</p>{answers}</body></html>"
    )


def create_rows_app(
    predictor: Predictor, limits: Limits | None = None, api_key: str | None = None, log=None
):
    """The FastAPI app for a table's model: the page at /, the API under /api."""
    limits = limits or Limits()
    service = RowService(predictor, limits, api_key)
    page = rows_page(service.described, predictor.columns)
    app = FastAPI(title="trainlab", description="Predict with a trained trainlab model.",
                  docs_url=None, redoc_url=None)  # fmt: skip
    app.state.in_flight = service.in_flight
    _add_error_handlers(app)

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def index() -> HTMLResponse:
        return HTMLResponse(page)

    @app.get("/api/health")
    async def health(request: Request):
        service.check_key(request)
        return {"status": "ok", "model_loaded": predictor.model is not None}

    @app.get("/api/model")
    async def model_info(request: Request):
        service.check_key(request)
        return {**service.model_info(), "columns": predictor.columns}

    @app.post("/api/predict", openapi_extra=ROWS_BODY)
    async def predict(request: Request):
        service.check_key(request)
        began = time.perf_counter()
        rows, names, single = await read_rows(request, limits.max_batch)
        results = await service.predict(rows, names)
        if single:
            (result,) = results
            if result.error is not None:
                raise ApiError(400, result.error)
            return service.response(result, began)
        return batch_reply(service, results, began)

    app.add_middleware(BodyLimit, max_bytes=limits.max_body_bytes)
    if log is not None:
        app.add_middleware(RequestLog, log=log)
    return app
