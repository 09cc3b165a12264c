"""What happens to a request before the model sees it (serve/requests.py), on the real app in
this process: the test holds the in-flight places itself, so nothing races the clock."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from trainlab.inference import Predictor
from trainlab.serve.app import Limits, create_app


@pytest.fixture(scope="module")
def predictor(default_run):
    return Predictor(default_run, device="cpu")


def _post(client: httpx.AsyncClient, blob: bytes):
    return client.post("/api/predict", content=blob, headers={"Content-Type": "image/png"})


def _client(app) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://serve")


def test_with_every_place_held_a_request_gets_503_after_the_wait(predictor, digits):
    """--max-in-flight 1 --queue-wait-ms 50: while the one place is taken, a request waits its
    50 ms and is turned away with 503 and Retry-After; once the place is free it is answered."""
    app = create_app(predictor, Limits(max_in_flight=1, queue_wait_s=0.05))
    limiter = app.state.in_flight
    blob, label = digits[0]

    async def scenario():
        async with _client(app) as client:
            async with limiter:  # the one place, held by the test
                busy = await _post(client, blob)
                waited = limiter.waiting
            return busy, waited, await _post(client, blob)

    busy, waited, free = asyncio.run(scenario())
    assert busy.status_code == 503 and busy.headers["retry-after"] == "1"
    assert busy.json() == {"error": "busy: 1 predictions are running; retry after 1 s"}
    assert waited == 0  # it gave up; nothing is left waiting
    assert free.status_code == 200 and free.json()["label"] == label


def test_a_waiting_request_gets_the_place_when_it_frees(predictor, digits):
    """A burst waits instead of failing: the request queued behind a held place is answered as
    soon as the place is given back (the wait allowed is far longer than the test)."""
    app = create_app(predictor, Limits(max_in_flight=1, queue_wait_s=600))
    limiter = app.state.in_flight
    blob, label = digits[1]

    async def scenario():
        async with _client(app) as client:
            async with limiter:
                queued = asyncio.create_task(_post(client, blob))
                while limiter.waiting == 0:  # until the request stands in the queue
                    await asyncio.sleep(0)
                assert not queued.done()
            return await queued

    reply = asyncio.run(scenario())
    assert reply.status_code == 200 and reply.json()["label"] == label
    assert limiter.waiting == 0


def test_a_batch_takes_one_place(predictor, digits):
    """Two places: the test holds one, a batch of five gets the other and is answered."""
    app = create_app(predictor, Limits(max_in_flight=2, queue_wait_s=0))
    files = [("files", (f"{i}.png", b, "image/png")) for i, (b, _) in enumerate(digits[:5])]

    async def scenario():
        async with _client(app) as client, app.state.in_flight:
            return await client.post("/api/predict/batch", files=files)

    reply = asyncio.run(scenario())
    assert reply.status_code == 200
    labels = [item["prediction"]["label"] for item in reply.json()["predictions"]]
    assert labels == [y for _, y in digits[:5]]
