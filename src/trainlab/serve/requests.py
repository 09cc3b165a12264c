"""What the server does with a request before the model sees it: its size, its place among the
predictions in flight, its image(s), and one log line.

- ``BodyLimit`` answers 413 for a body over the limit, from its Content-Length header before the
  body is read, or as soon as a streamed body passes the limit;
- ``InFlight`` lets at most ``limit`` predictions run at once; a request waits up to ``wait_s``
  for a place, then gets 503 with Retry-After: never a queue without end;
- ``read_images`` takes multipart, raw bytes or JSON with base64; anything else is a 4xx
  ``ApiError`` with a message saying what to send.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import time

from fastapi import Request


class ApiError(Exception):
    """An answer other than 200: its status, a message for people, and extra headers."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status, self.message, self.headers = status, message, headers or {}


# How much of a refused body is read and dropped before the 413 goes out. A client that sends
# its whole body without waiting (urllib, requests: no Expect: 100-continue) only reads the
# answer if the server took the body; closing on unread data resets the connection instead.
# Past this bound the connection is closed anyway (nginx's lingering close, in bytes).
DRAIN_BYTES = 64_000_000


async def _drain(receive, limit: int) -> None:
    """Read and drop the rest of a request body, up to ``limit`` bytes."""
    seen = 0
    while seen <= limit:
        message = await receive()
        if message["type"] != "http.request":
            return
        seen += len(message.get("body", b""))
        if not message.get("more_body", False):
            return


class BodyLimit:
    """ASGI middleware: 413 for a body over the limit, without keeping it: the body is read
    and dropped (up to ``DRAIN_BYTES``) so that every client can read the answer."""

    def __init__(self, app, max_bytes: int):
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        length = dict(scope.get("headers") or []).get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > self.max_bytes):
            if length.isdigit() and int(length) <= DRAIN_BYTES:
                await _drain(receive, DRAIN_BYTES)
            return await _send_json(send, 413, self._message())
        seen = 0
        started = False

        async def limited_receive():
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    if message.get("more_body", False):
                        await _drain(receive, DRAIN_BYTES)
                    raise _TooLarge
            return message

        async def tracking_send(message):
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except _TooLarge:
            if not started:
                await _send_json(send, 413, self._message())

    def _message(self) -> str:
        return (
            f"the request body is larger than {self.max_bytes:,} bytes; send a smaller image "
            "(or start the server with a larger --max-body-mb)"
        )


class _TooLarge(Exception):
    pass


async def _send_json(send, status: int, message: str, headers: dict[str, str] | None = None):
    body = json.dumps({"error": message}).encode()
    raw = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    raw += [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})


class InFlight:
    """At most ``limit`` predictions at once. A request waits up to ``wait_s`` for a place
    (smoothing short bursts), then is turned away with 503: a bounded wait, never a queue
    without end."""

    def __init__(self, limit: int, retry_after_s: int, wait_s: float):
        self.limit, self.retry_after_s, self.wait_s = limit, retry_after_s, wait_s
        self.slots = asyncio.Semaphore(limit)
        self.waiting = 0  # requests waiting for a place now

    async def __aenter__(self):
        self.waiting += 1
        try:
            await asyncio.wait_for(self.slots.acquire(), timeout=self.wait_s or 1e-9)
        except TimeoutError:
            raise ApiError(
                503,
                f"busy: {self.limit} predictions are running; retry after {self.retry_after_s} s",
                {"Retry-After": str(self.retry_after_s)},
            ) from None
        finally:
            self.waiting -= 1
        return self

    async def __aexit__(self, *exc):
        self.slots.release()


class RequestLog:
    """ASGI middleware: one line per request (method, path, status, milliseconds)."""

    def __init__(self, app, log):
        self.app, self.log = app, log

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        began, status = time.perf_counter(), [0]

        async def noting_send(message):
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, noting_send)
        finally:
            ms = 1000 * (time.perf_counter() - began)
            self.log(f"{scope['method']} {scope['path']} {status[0]} {ms:.1f} ms")


async def read_images(request: Request, single: bool) -> tuple[list[bytes], list[str]]:
    """The image(s) of a request, from multipart, raw bytes or JSON with base64."""
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind == "multipart/form-data":
        try:
            form = await request.form()
        except Exception as e:  # noqa: BLE001 - a malformed multipart body is the client's
            raise ApiError(400, f"malformed multipart body ({type(e).__name__})") from None
        uploads = [v for k, v in form.multi_items() if k in ("file", "files", "image", "images")]
        uploads = [u for u in uploads if hasattr(u, "read")]
        if not uploads:
            raise ApiError(400, "multipart body without a file: send the image as field 'file'")
        images = [await u.read() for u in uploads]
        return _one_or_many(images, [u.filename or "upload" for u in uploads], single)
    if kind == "application/json":
        try:
            payload = json.loads(await request.body())
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise ApiError(400, "the JSON body does not parse") from None
        values = payload.get("images") if isinstance(payload, dict) else None
        if values is None and isinstance(payload, dict) and "image" in payload:
            values = [payload["image"]]
        if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
            raise ApiError(
                400, "JSON needs {'image': base64} (or {'images': [base64, ...]} for a batch)"
            )
        images = [_decode_base64(v, i) for i, v in enumerate(values)]
        return _one_or_many(images, [f"image {i}" for i in range(len(images))], single)
    if kind.startswith("image/") or kind == "application/octet-stream":
        body = await request.body()
        return _one_or_many([body], ["body"], single)
    raise ApiError(
        415,
        f"content type '{kind or 'none'}' is not supported: send multipart/form-data (field "
        "'file'), image/* or application/octet-stream bytes, or JSON with base64",
    )


def _one_or_many(images, names, single: bool):
    if not images or any(len(i) == 0 for i in images):
        raise ApiError(400, "empty image: the body holds no bytes")
    if single and len(images) != 1:
        raise ApiError(400, "one image per /api/predict call; use /api/predict/batch for more")
    return images, names


def _decode_base64(value: str, index: int) -> bytes:
    if value.startswith("data:"):
        value = value.split(",", 1)[-1]
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise ApiError(400, f"image {index}: not valid base64") from None
