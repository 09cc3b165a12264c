"""``trainlab serve``: the draw-a-digit page and a JSON API for a run, on FastAPI and uvicorn.

Example:
    $ trainlab serve runs/<id>                 # http://127.0.0.1:8000
    $ curl -F file=@digit.png http://127.0.0.1:8000/api/predict

FastAPI and uvicorn are the optional extra ``trainlab[serve]``; without them the command says
what to install. The server binds loopback unless told otherwise, and warns when it is.
"""

from __future__ import annotations

import ipaddress
import sys

from trainlab.errors import TrainlabError

EXTRA = "pip install 'trainlab[serve]'  (fastapi, uvicorn, python-multipart)"


def _need_serve_extra() -> None:
    missing = []
    for module, package in (
        ("fastapi", "fastapi"),
        ("uvicorn", "uvicorn"),
        ("multipart", "python-multipart"),
    ):
        try:
            __import__(module)
        except ImportError:
            missing.append(package)
    if missing:
        raise TrainlabError(
            f"trainlab serve needs {', '.join(missing)}, which are not installed. Install the "
            f"extra: {EXTRA}."
        )


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _check_port(host: str, port: int) -> None:
    """Refuse a port another program holds, before announcing anything."""
    import socket

    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as e:
            raise TrainlabError(
                f"cannot serve on {host}:{port}: {e.strerror or e} (another program has the "
                f"port?). Choose another with --port, e.g. --port {port + 1}."
            ) from None


def serve(
    checkpoint,
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    api_key: str | None = None,
    device: str = "auto",
    max_body_bytes: int = 2_000_000,
    max_pixels: int = 16_000_000,
    max_batch: int = 16,
    max_in_flight: int = 4,
    queue_wait_s: float = 0.5,
    log=None,
    trust_code: bool = False,
    quiet: bool = False,
) -> None:
    """Load the model once and serve until Ctrl-C (or SIGTERM) stops the server cleanly."""
    _need_serve_extra()
    import uvicorn

    from trainlab.inference import Predictor
    from trainlab.serve.app import Limits, create_app

    log = log or (lambda line: print(line, file=sys.stderr, flush=True))
    predictor = Predictor(checkpoint, device=device, max_pixels=max_pixels, trust_code=trust_code)
    limits = Limits(
        max_body_bytes=max_body_bytes,
        max_batch=max_batch,
        max_in_flight=max_in_flight,
        queue_wait_s=queue_wait_s,
    )
    app = create_app(predictor, limits, api_key=api_key, log=None if quiet else log)
    if not is_loopback(host):
        log(
            f"warning: serving on {host}, reachable from other machines"
            + ("" if api_key else " by anyone: consider --api-key")
            + ". The default, 127.0.0.1, is this machine only."
        )
    _check_port(host, port)  # before anything says "serving"
    shown = f"[{host}]" if ":" in host else host
    log(
        f"serving {predictor.path} ({predictor.dataset}, {len(predictor.classes)} classes) at "
        f"http://{shown}:{port}/  (API under /api, schema at /openapi.json; Ctrl-C stops)"
    )
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level="warning",
        access_log=False,
        timeout_graceful_shutdown=5,
    )
    server = uvicorn.Server(config)
    try:
        server.run()
    except KeyboardInterrupt:  # a second Ctrl-C while shutting down
        pass
    except SystemExit:  # uvicorn exits when it cannot bind
        pass
    if not server.started:
        raise TrainlabError(
            f"could not serve on {host}:{port} (is the port in use? try --port 8001)"
        )
    log("server stopped.")
