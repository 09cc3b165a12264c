"""``trainlab serve``: a page for a run's model (the page its kind of data offers: draw a digit,
or upload or take a photo) and a JSON API, on FastAPI and uvicorn.

Example:
    $ trainlab serve runs/<id>                 # http://127.0.0.1:8000
    $ curl -F file=@digit.png http://127.0.0.1:8000/api/predict

FastAPI and uvicorn are the optional extra ``trainlab[serve]``; without them the command says
what to install. The server binds loopback unless told otherwise, and warns when it is. A
table's model takes rows as JSON objects instead of a page's inputs (``trainlab.serve.rows``);
a model whose kind of data has neither (features built in Python, synthetic regression) is
refused in one paragraph.
"""

from __future__ import annotations

import ipaddress
import logging

from trainlab.errors import ConfigError, TrainlabError

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


def _listen(host: str, port: int):
    """The server's listening socket, bound here, before uvicorn starts: a port another
    program holds is refused in one paragraph, and no other program can take it between a
    check and the bind."""
    import socket

    if not 0 < port < 65536:
        raise ConfigError(f"--port {port} is not a TCP port: give one from 1 to 65535.")
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
        sock.listen(2048)
    except OSError as e:
        sock.close()
        raise TrainlabError(
            f"cannot serve on {host}:{port}: {e.strerror or e} (another program has the "
            f"port?). Choose another with --port, e.g. --port {port % 65535 + 1}."
        ) from None
    return sock


def _predictor(checkpoint, device, max_pixels, trust_code, threshold, reject):
    """The model, loaded once; with ``reject``, checked for its threshold before serving."""
    from trainlab.inference import Predictor

    predictor = Predictor(
        checkpoint,
        device=device,
        max_pixels=max_pixels,
        trust_code=trust_code,
        threshold=threshold,  # a multi-label model's, instead of its recorded ones
    )
    if reject is None:  # the run's default (trainlab calibrate --reject-default)
        reject = predictor.reject_default
    if reject:  # refused here, before serving, for a run without a threshold
        predictor.check_reject()
        predictor.reject = True
    return predictor


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
    trust_code: bool = False,
    quiet: bool = False,
    threshold: float | None = None,
    reject: bool | None = None,
) -> None:
    """Load the model once and serve until Ctrl-C (or SIGTERM) stops the server cleanly.
    ``reject``: answer "none of these" for every request, not only those asking ?reject=1
    (None: as the run's default says, ``trainlab calibrate --reject-default``)."""
    _need_serve_extra()
    import uvicorn

    from trainlab.serve.app import Limits, create_app

    log = logging.getLogger(__name__).info  # the requests too, one line each unless quiet
    predictor = _predictor(checkpoint, device, max_pixels, trust_code, threshold, reject)
    limits = Limits(
        max_body_bytes=max_body_bytes,
        max_batch=max_batch,
        max_in_flight=max_in_flight,
        queue_wait_s=queue_wait_s,
    )
    if predictor.takes_rows:  # a table's model: rows as JSON objects, no drawing page
        from trainlab.serve.rows import create_rows_app as create_app
    app = create_app(predictor, limits, api_key=api_key, log=None if quiet else log)
    if not is_loopback(host):
        logging.getLogger(__name__).warning(
            f"warning: serving on {host}, reachable from other machines"
            + ("" if api_key else " by anyone: consider --api-key")
            + ". The default, 127.0.0.1, is this machine only."
        )
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level="warning",
        access_log=False,
        timeout_graceful_shutdown=5,
    )
    shown = f"[{host}]" if ":" in host else host

    class Server(uvicorn.Server):
        async def startup(self, sockets=None):
            await super().startup(sockets=sockets)
            if self.started:  # answering, and Ctrl-C is uvicorn's: now say so
                log(
                    f"serving {predictor.path} ({predictor.dataset}, "
                    f"{len(predictor.classes)} classes) at http://{shown}:{port}/  "
                    "(API under /api, schema at /openapi.json; Ctrl-C stops)"
                )

    server = Server(config)
    sock = _listen(host, port)  # a port that is taken is refused before anything starts
    interrupted = False
    try:
        server.run(sockets=[sock])
    except KeyboardInterrupt:  # Ctrl-C: uvicorn raises it again once it has stopped
        interrupted = True
    except SystemExit:  # uvicorn exits when its startup fails
        pass
    finally:
        sock.close()
    if not (server.started or interrupted):
        raise TrainlabError(f"could not serve on {host}:{port}: the server did not start.")
    log("server stopped.")
