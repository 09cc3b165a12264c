"""The JSON API of a real server: each input format, every limit, and correct answers after
every error."""

import base64
import io

import httpx
import pytest
from jsonschema import Draft202012Validator
from serving import Server, run_cli

from trainlab.serve import is_loopback


def predict(server, content: bytes, headers=None, **kw):
    return httpx.post(
        server.url + "/api/predict",
        content=content,
        headers={"Content-Type": "image/png", **(headers or {})},
        timeout=30,
        **kw,
    )


def assert_still_predicts(server, digits):
    blob, label = digits[0]
    reply = predict(server, blob)
    assert reply.status_code == 200 and reply.json()["label"] == label


def test_a_test_digit_gets_its_label_in_every_input_format(server, digits):
    blob, label = digits[0]
    encoded = base64.b64encode(blob).decode()
    replies = [
        httpx.post(server.url + "/api/predict", files={"file": ("d.png", blob, "image/png")}),
        predict(server, blob),
        predict(server, blob, headers={"Content-Type": "application/octet-stream"}),
        httpx.post(server.url + "/api/predict", json={"image": encoded}),
        httpx.post(server.url + "/api/predict", json={"image": "data:image/png;base64," + encoded}),
    ]
    for reply in replies:
        assert reply.status_code == 200, reply.text
        body = reply.json()
        assert body["label"] == label and len(body["probabilities"]) == 10
        assert body["top"][0]["label"] == label and body["milliseconds"] >= 0
        preview = base64.b64decode(body["preview_png"])
        assert preview[:4] == b"\x89PNG"


def test_batch_and_model_and_health(server, digits):
    files = [("files", (f"{i}.png", b, "image/png")) for i, (b, _) in enumerate(digits[:5])]
    files.append(("files", ("bad.png", b"nope", "image/png")))
    reply = httpx.post(server.url + "/api/predict/batch", files=files, timeout=30)
    assert reply.status_code == 200
    items = reply.json()["predictions"]
    assert [i["prediction"]["label"] for i in items[:5]] == [y for _, y in digits[:5]]
    assert items[5]["prediction"] is None and "bad.png" in items[5]["error"]
    too_many = [("files", (f"{i}.png", digits[0][0], "image/png")) for i in range(17)]
    assert httpx.post(server.url + "/api/predict/batch", files=too_many).status_code == 413
    model = httpx.get(server.url + "/api/model").json()
    assert model["classes"] == [str(d) for d in range(10)] and model["test_accuracy"] > 0.98
    assert model["limits"]["max_body_bytes"] == 2_000_000
    assert model["limits"]["queue_wait_ms"] == 500
    assert httpx.get(server.url + "/api/health").json() == {"status": "ok", "model_loaded": True}


def test_the_openapi_schema_describes_the_real_responses(server, digits):
    spec = httpx.get(server.url + "/openapi.json").json()
    assert "/api/predict" in spec["paths"] and "/api/predict/batch" in spec["paths"]
    content = spec["paths"]["/api/predict"]["post"]["requestBody"]["content"]
    assert {"multipart/form-data", "image/png", "application/json"} <= set(content)

    def check(name, instance):
        schema = {"$ref": f"#/components/schemas/{name}", "components": spec["components"]}
        errors = list(Draft202012Validator(schema).iter_errors(instance))
        assert errors == [], errors

    check("PredictResponse", predict(server, digits[0][0]).json())
    files = [("files", ("a.png", digits[1][0], "image/png"))]
    check("BatchResponse", httpx.post(server.url + "/api/predict/batch", files=files).json())
    check("ModelResponse", httpx.get(server.url + "/api/model").json())
    check("HealthResponse", httpx.get(server.url + "/api/health").json())
    check("ErrorResponse", predict(server, b"junk").json())
    # /docs would load Swagger UI from a CDN: it is off
    assert httpx.get(server.url + "/docs").status_code == 404


@pytest.mark.parametrize(
    "send, status, needle",
    [
        (lambda s: predict(s, b"\0" * 2_100_000), 413, "larger than 2,000,000 bytes"),
        (lambda s: predict(s, iter([b"\0" * 500_000] * 5)), 413, "larger than"),  # chunked
        (lambda s: predict(s, b"not an image"), 400, "not an image"),
        (lambda s: predict(s, b""), 400, "empty image"),
        (lambda s: predict(s, _blank_png()), 400, "no digit found"),
        (lambda s: predict(s, _bomb_png()), 400, "refused before decoding"),
        (lambda s: predict(s, b"x", headers={"Content-Type": "text/plain"}), 415, "text/plain"),
        (lambda s: httpx.post(s.url + "/api/predict", json={"image": "@@@"}), 400, "base64"),
        (lambda s: httpx.post(s.url + "/api/predict", json={"img": "x"}), 400, "JSON needs"),
        (
            lambda s: predict(s, b"{", headers={"Content-Type": "application/json"}),
            400,
            "does not parse",
        ),
        (
            lambda s: predict(
                s, b"--x\r\nbroken", headers={"Content-Type": "multipart/form-data; boundary=x"}
            ),
            400,
            "multipart",
        ),
    ],
)
def test_bad_requests_get_4xx_json_and_the_server_goes_on(server, digits, send, status, needle):
    reply = send(server)
    assert reply.status_code == status, reply.text
    assert needle in reply.json()["error"]
    assert_still_predicts(server, digits)


def _blank_png() -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("L", (64, 64), 255).save(buffer, format="PNG")
    return buffer.getvalue()


def _bomb_png() -> bytes:
    import struct
    import zlib

    def chunk(kind, data):
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    ihdr = struct.pack(">IIBBBBB", 50_000, 50_000, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64))


def test_an_api_key_is_required_when_set(default_run, digits):
    keyed = Server(default_run, env={"TRAINLAB_API_KEY": "s3cret"})
    try:
        blob, label = digits[0]
        assert predict(keyed, blob).status_code == 401
        wrong = predict(keyed, blob, headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401 and wrong.headers["www-authenticate"] == "Bearer"
        assert httpx.get(keyed.url + "/api/model").status_code == 401
        right = predict(keyed, blob, headers={"Authorization": "Bearer s3cret"})
        assert right.status_code == 200 and right.json()["label"] == label
        assert httpx.get(keyed.url + "/").status_code == 200  # the page asks for the key
    finally:
        keyed.stop()


def test_the_limits_given_on_the_command_line_are_the_servers(default_run, digits):
    """The flags reach the server (what the limits then do: tests/serve/test_requests.py)."""
    limited = Server(
        default_run, "--max-in-flight", "1", "--queue-wait-ms", "0", "--max-batch", "2"
    )
    try:
        limits = httpx.get(limited.url + "/api/model").json()["limits"]
        assert limits["max_in_flight"] == 1 and limits["queue_wait_ms"] == 0
        three = [("files", (f"{i}.png", b, "image/png")) for i, (b, _) in enumerate(digits[:3])]
        reply = httpx.post(limited.url + "/api/predict/batch", files=three, timeout=30)
        assert reply.status_code == 413 and "at most 2" in reply.json()["error"]
        assert_still_predicts(limited, digits)
    finally:
        limited.stop()


def test_ctrl_c_stops_the_server_cleanly(default_run):
    s = Server(default_run)
    err = s.stop()
    assert s.proc.returncode == 0 and "server stopped." in err and "Traceback" not in err


def test_loopback_by_default_and_a_warning_otherwise(default_run):
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.0.2.1")
    # the warning comes before binding; a port that is taken then ends it cleanly
    import socket

    with socket.socket() as taken:
        taken.bind(("0.0.0.0", 0))
        taken.listen()
        port = taken.getsockname()[1]
        proc = run_cli("serve", str(default_run), "--host", "0.0.0.0", "--port", str(port))
    assert "warning: serving on 0.0.0.0" in proc.stderr and "--api-key" in proc.stderr
    assert proc.returncode != 0 and f"cannot serve on 0.0.0.0:{port}" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_a_port_that_is_no_tcp_port_is_refused(default_run):
    proc = run_cli("serve", str(default_run), "--port", "99999")
    assert proc.returncode != 0 and "argument --port: expected a whole number" in proc.stderr
    assert "from 1 to 65535, got 99999" in proc.stderr
    assert "Traceback" not in proc.stderr and "serving" not in proc.stderr


def test_without_the_extra_the_error_names_it(default_run, tmp_path):
    fake = tmp_path / "site" / "fastapi"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text("raise ImportError('no fastapi here')\n")
    proc = run_cli("serve", str(default_run), env={"PYTHONPATH": str(fake.parent)})
    assert proc.returncode != 0 and "pip install 'trainlab[serve]'" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_a_client_that_sends_a_large_body_without_waiting_reads_the_413(server):
    """urllib (like requests) sends the whole body with no Expect: 100-continue; it must get
    the 413 and its JSON, not a connection reset."""
    import json
    import urllib.error
    import urllib.request

    request = urllib.request.Request(
        server.url + "/api/predict",
        data=b"\0" * 20_000_000,
        headers={"Content-Type": "image/png"},
        method="POST",
    )
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=600)
    assert refused.value.code == 413
    assert "larger than 2,000,000 bytes" in json.loads(refused.value.read())["error"]
