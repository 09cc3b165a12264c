"""The HTTP API and page over ``trainlab.inference.Predictor``: a thin FastAPI app with limits.

Example:
    >>> from trainlab.inference import Predictor
    >>> from trainlab.serve.app import Limits, create_app
    >>> app = create_app(Predictor("runs/<id>"), Limits(max_body_bytes=2_000_000))

Limits, for a server that must keep working (``trainlab.serve.requests`` applies them):
- a request body over ``max_body_bytes`` gets 413, from its Content-Length header before the
  body is read, or as soon as a streamed body passes the limit;
- images over ``max_pixels`` are refused before decoding (by the Predictor);
- at most ``max_in_flight`` predictions run at once; a request waits up to ``queue_wait_s``
  for a place, then gets 503 with Retry-After: never a queue without end;
- a bad image, an empty one or a wrong content type gets a 4xx JSON error, never a 500.

The app keeps its limiter as ``app.state.in_flight`` (an ``InFlight``).
"""

from __future__ import annotations

import asyncio
import secrets
import threading
import time
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from trainlab.inference import Prediction, Predictor
from trainlab.serve.requests import ApiError, BodyLimit, InFlight, RequestLog, read_images


@dataclass(frozen=True)
class Limits:
    max_body_bytes: int = 2_000_000
    max_batch: int = 16
    max_in_flight: int = 4
    queue_wait_s: float = 0.5
    retry_after_s: int = 1


class ClassProbability(BaseModel):
    label: str
    probability: float


class PredictResponse(BaseModel):
    """One image's prediction."""

    label: str = Field(
        description="the predicted class (a multi-label model: its labels, space-separated)"
    )
    index: int = Field(description="its index in the model's classes")
    probability: float = Field(description="the predicted class's probability")
    low_confidence: bool = Field(description="probability below the server's threshold")
    top: list[ClassProbability] = Field(description="the most probable classes, best first")
    probabilities: list[float] = Field(description="one per class, in the model's class order")
    inverted: bool = Field(description="the image was dark on light and was inverted")
    preview_png: str = Field(description="the 28×28 image the model saw, base64 PNG")
    labels: list[ClassProbability] | None = Field(
        default=None,
        description="a multi-label model: the labels over their recorded thresholds, most "
        "probable first, each with its probability (null for a single-label model)",
    )
    score: float | None = Field(
        default=None,
        description="with --reject or ?reject=1: the energy score (high: unlike the training data)",
    )
    rejected: bool | None = Field(
        default=None, description='with a score: over the run\'s threshold, "none of these"'
    )
    heat_map_png: str | None = Field(
        default=None,
        description="with ?explain=1: where the model looked for its answer (Grad-CAM, or "
        "occlusion for a model without convolutions) over the image it saw, base64 PNG",
    )
    milliseconds: float = Field(description="time the call took on the server")


class BatchItem(BaseModel):
    source: str
    prediction: PredictResponse | None = None
    error: str | None = None


class BatchResponse(BaseModel):
    predictions: list[BatchItem]
    milliseconds: float


class ModelResponse(BaseModel):
    run: str
    checkpoint: str
    model: str | None
    dataset: str
    kind: str  # the kind of data it was trained on (trainlab.data.kinds)
    classes: list[str]
    input_shape: list[int]
    epoch: int | None
    test_accuracy: float | None
    parameters: int | None
    thresholds: list[float] | None = None  # a multi-label model's, one per class
    test_micro_f1: float | None = None  # a multi-label model's figure on its test split
    limits: dict[str, int]


class HealthResponse(BaseModel):
    status: str
    model_loaded: bool


class ErrorResponse(BaseModel):
    error: str


IMAGE_BODY = {
    "requestBody": {
        "required": True,
        "description": "an image file (multipart field 'file'), raw image bytes (image/* or "
        "application/octet-stream), or JSON {'image': base64 or a data: URL}",
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "properties": {"file": {"type": "string", "format": "binary"}},
                    "required": ["file"],
                }
            },
            "image/png": {"schema": {"type": "string", "format": "binary"}},
            "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
            "application/json": {
                "schema": {
                    "type": "object",
                    "properties": {"image": {"type": "string"}},
                    "required": ["image"],
                }
            },
        },
    }
}
ERRORS = {
    400: {"model": ErrorResponse, "description": "not a readable image, or nothing to read in it"},
    401: {"model": ErrorResponse, "description": "missing or wrong API key"},
    413: {"model": ErrorResponse, "description": "body or image too large"},
    415: {"model": ErrorResponse, "description": "unsupported content type"},
    503: {"model": ErrorResponse, "description": "busy: retry after Retry-After seconds"},
}


class Service:
    """What the routes share: the model (one forward pass at a time), the limits, the key."""

    def __init__(self, predictor: Predictor, limits: Limits, api_key: str | None):
        self.predictor, self.limits, self.api_key = predictor, limits, api_key
        self.in_flight = InFlight(limits.max_in_flight, limits.retry_after_s, limits.queue_wait_s)
        self.model_lock = threading.Lock()  # requests never share a batch
        self.described = predictor.describe()
        self.explainer = None  # made on the first ?explain=1: a float32 copy of the model

    def check_key(self, request: Request) -> None:
        if self.api_key is None:
            return
        given = request.headers.get("authorization", "")
        scheme, _, token = given.partition(" ")
        if scheme.lower() != "bearer" or not secrets.compare_digest(token, self.api_key):
            raise ApiError(
                401,
                "missing or wrong API key: send 'Authorization: Bearer KEY'",
                {"WWW-Authenticate": "Bearer"},
            )

    def run_predictions(
        self, images: list[bytes], names: list[str], reject: bool = False
    ) -> list[Prediction]:
        prepared, results = [], []
        for image, name in zip(images, names, strict=True):
            result = Prediction(source=name)
            try:
                item = self.predictor.prepare(image, name)
                result.preview, result.inverted = item.image, item.inverted
                prepared.append((result, item.image))
            except Exception as e:  # noqa: BLE001 - a bad image must never become a 500
                result.error = str(e) if hasattr(e, "args") and str(e) else type(e).__name__
            results.append(result)
        if prepared:
            import numpy as np

            predictor = self.predictor
            with self.model_lock:
                scoring = predictor.reject
                predictor.reject = scoring or reject  # this request's: ?reject=1
                predictor._scores = []
                try:
                    probs = predictor.run(np.stack([image for _, image in prepared]))
                    scores = np.concatenate(predictor._scores) if predictor._scores else None
                finally:
                    predictor.reject = scoring
            for i, ((result, _), p) in enumerate(zip(prepared, probs, strict=True)):
                predictor.fill(result, p)
                if scores is not None:
                    result.score = float(scores[i])
                    result.rejected = bool(scores[i] > predictor.reject_threshold)
        return results

    async def predict(
        self, images: list[bytes], names: list[str], reject: bool = False
    ) -> list[Prediction]:
        async with self.in_flight:
            return await asyncio.to_thread(self.run_predictions, images, names, reject)

    def asks_reject(self, request: Request) -> bool:
        """?reject=1: "none of these" for this request (refused, 400, without a threshold)."""
        if request.query_params.get("reject", "0").lower() not in ("1", "true", "yes"):
            return False
        if self.predictor.reject_threshold is None or self.predictor.output == "log_probs":
            raise ApiError(
                400,
                "this model has no rejection threshold (its run had no validation split); "
                "ask without ?reject=1",
            )
        return True

    def asks_explain(self, request: Request) -> bool:
        """?explain=1: the heat map in the answer (400 where captum is not installed)."""
        if request.query_params.get("explain", "0").lower() not in ("1", "true", "yes"):
            return False
        from trainlab.engine.explain import require_captum
        from trainlab.errors import ConfigError

        try:
            require_captum()
        except ConfigError as e:
            raise ApiError(400, f"{e} Or ask without ?explain=1.") from None
        return True

    def run_explanations(self, results: list[Prediction]) -> None:
        """Each answered result's heat map (``result.heat``), one request at a time."""
        from trainlab.inference.explain import Explainer

        with self.model_lock:
            if self.explainer is None:
                self.explainer = Explainer(self.predictor)
            self.explainer.heat_maps(results)

    async def explain(self, results: list[Prediction]) -> None:
        async with self.in_flight:
            await asyncio.to_thread(self.run_explanations, results)

    @staticmethod
    def response(result: Prediction, began: float) -> dict[str, Any]:
        from trainlab.inference import png_base64

        return {
            "label": result.label,
            "index": result.index,
            "probability": result.probability,
            "low_confidence": result.low_confidence,
            "top": [{"label": c, "probability": p} for c, p in result.top],
            "probabilities": result.probabilities,
            "inverted": result.inverted,
            "preview_png": png_base64(result.preview),
            "labels": None
            if result.labels is None
            else [{"label": c, "probability": p} for c, p in result.labels],
            "score": result.score,
            "rejected": result.rejected if result.score is not None else None,
            "heat_map_png": _heat_png(result),
            "milliseconds": round(1000 * (time.perf_counter() - began), 2),
        }

    def model_info(self) -> dict[str, Any]:
        described, limits = self.described, self.limits
        metrics = described.get("metrics") or {}
        return {
            **{k: described[k] for k in ("run", "checkpoint", "model", "dataset", "classes")},
            "kind": described["kind"],
            "input_shape": described["input_shape"],
            "epoch": described.get("epoch"),
            "test_accuracy": metrics.get("test_acc"),
            "parameters": described.get("parameters"),
            "thresholds": described.get("thresholds"),
            "test_micro_f1": metrics.get("test_micro_f1"),
            "limits": {
                "max_body_bytes": limits.max_body_bytes,
                "max_pixels": self.predictor.max_pixels,
                "max_batch": limits.max_batch,
                "max_in_flight": limits.max_in_flight,
                "queue_wait_ms": round(1000 * limits.queue_wait_s),
            },
        }


def _heat_png(result: Prediction) -> str | None:
    """The heat map over the image the model saw, base64 PNG (None when not asked)."""
    if result.heat is None or result.preview is None:
        return None
    import base64

    from trainlab.engine.explain import overlay_png, resized

    heat = resized(result.heat, result.preview.shape[-2:])
    return base64.b64encode(overlay_png(result.preview, heat)).decode("ascii")


def batch_reply(service: Service, results: list[Prediction], began: float) -> dict[str, Any]:
    """A batch's reply: each input's prediction or its error, in order, and the time taken."""
    return {
        "predictions": [
            {"source": r.source, "error": r.error}
            if r.error
            else {"source": r.source, "prediction": service.response(r, began)}
            for r in results
        ],
        "milliseconds": round(1000 * (time.perf_counter() - began), 2),
    }


def batch_body(max_batch: int) -> dict[str, Any]:
    """The OpenAPI request body of /api/predict/batch."""
    files = {"type": "array", "items": {"type": "string", "format": "binary"}}
    images = {"type": "array", "items": {"type": "string"}}
    return {
        "requestBody": {
            "required": True,
            "description": f"up to {max_batch} images: multipart fields 'files', or "
            "JSON {'images': [base64, ...]}",
            "content": {
                "multipart/form-data": {
                    "schema": {"type": "object", "properties": {"files": files}}
                },
                "application/json": {
                    "schema": {"type": "object", "properties": {"images": images}}
                },
            },
        }
    }


def create_app(
    predictor: Predictor,
    limits: Limits | None = None,
    api_key: str | None = None,
    log: Any = None,
):
    """The FastAPI app: the page at /, the API under /api, the schema at /openapi.json.

    FastAPI's /docs and /redoc pages load their scripts from a CDN, so they are off: nothing
    this server sends makes a browser reach past it.
    """
    from trainlab.serve.page import render_page

    page = render_page(predictor.describe(), predictor.page)  # refuses a kind without a page
    limits = limits or Limits()
    app = FastAPI(
        title="trainlab",
        description="Predict with a trained trainlab model.",
        docs_url=None,
        redoc_url=None,
    )
    service = Service(predictor, limits, api_key)
    app.state.in_flight = service.in_flight

    _add_error_handlers(app)

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def index() -> HTMLResponse:
        return HTMLResponse(page)

    @app.get("/api/health", response_model=HealthResponse, responses={401: ERRORS[401]})
    async def health(request: Request):
        service.check_key(request)
        return {"status": "ok", "model_loaded": predictor.model is not None}

    @app.get("/api/model", response_model=ModelResponse, responses={401: ERRORS[401]})
    async def model_info(request: Request):
        service.check_key(request)
        return service.model_info()

    _add_prediction_routes(app, service, limits)
    app.add_middleware(BodyLimit, max_bytes=limits.max_body_bytes)
    if log is not None:
        app.add_middleware(RequestLog, log=log)
    return app


def _add_error_handlers(app: FastAPI) -> None:
    """Every error answers {"error": ...}: the API's own, HTTP's (404, 405) and a bug's."""

    @app.exception_handler(ApiError)
    async def api_error(_request: Request, error: ApiError):
        return JSONResponse({"error": error.message}, error.status, headers=error.headers)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_request: Request, error: StarletteHTTPException):
        # 404, 405 and the like answer in the same shape as every other error
        return JSONResponse(
            {"error": str(error.detail)}, error.status_code, headers=getattr(error, "headers", None)
        )

    @app.exception_handler(Exception)
    async def unexpected(_request: Request, error: Exception):  # pragma: no cover - a bug
        return JSONResponse({"error": f"internal error: {type(error).__name__}"}, 500)


def _add_prediction_routes(app: FastAPI, service: Service, limits: Limits) -> None:
    """POST /api/predict and /api/predict/batch."""

    @app.post(
        "/api/predict", response_model=PredictResponse, responses=ERRORS, openapi_extra=IMAGE_BODY
    )
    async def predict_one(request: Request):
        service.check_key(request)
        began = time.perf_counter()
        images, names = await read_images(request, single=True)
        explain = service.asks_explain(request)
        (result,) = await service.predict(images, names, service.asks_reject(request))
        if result.error is not None:
            raise ApiError(400, result.error)
        if explain:
            await service.explain([result])
        return service.response(result, began)

    @app.post(
        "/api/predict/batch",
        response_model=BatchResponse,
        responses=ERRORS,
        openapi_extra=batch_body(limits.max_batch),
    )
    async def predict_batch(request: Request):
        service.check_key(request)
        began = time.perf_counter()
        images, names = await read_images(request, single=False)
        if len(images) > limits.max_batch:
            raise ApiError(413, f"{len(images)} images; a batch holds at most {limits.max_batch}")
        explain = service.asks_explain(request)
        results = await service.predict(images, names, service.asks_reject(request))
        if explain:
            await service.explain(results)
        return batch_reply(service, results, began)
