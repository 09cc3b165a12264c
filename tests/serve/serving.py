"""Helpers for the server tests: a real `trainlab serve` subprocess on a free loopback port."""

from __future__ import annotations

import io
import os
import socket
import subprocess
import sys
import threading

import numpy as np
from PIL import Image


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """``trainlab serve`` in a subprocess. It is ready when it says "serving ... at URL": it
    says so once uvicorn has started on its socket, so from then on a request is answered and
    Ctrl-C stops it cleanly."""

    def __init__(self, run_dir, *args: str, env: dict | None = None):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "trainlab", "serve", str(run_dir), "--port", str(self.port)]
            + ["--device", "cpu", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, **(env or {})},
        )
        self.lines: list[str] = []
        ready = threading.Event()

        def read_stderr():  # all of it, so that a full pipe never stalls the server
            for line in self.proc.stderr:
                self.lines.append(line)
                if line.startswith("serving "):
                    ready.set()
            ready.set()  # ended without serving

        self.reader = threading.Thread(target=read_stderr, daemon=True)
        self.reader.start()
        ready.wait(timeout=600)  # a bound for a hung start only: the event ends the wait
        if not any(line.startswith("serving ") for line in self.lines):
            self.proc.kill()
            raise RuntimeError(f"server did not start: {''.join(self.lines)}")
        assert f"at {self.url}/" in "".join(self.lines)

    def stop(self) -> str:
        """Ctrl-C, then everything it wrote to stderr."""
        import signal

        self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.reader.join()
        return "".join(self.lines)


def run_cli(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "trainlab", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=1800,
        check=False,
    )


def png(image: np.ndarray, scale: int = 1, invert: bool = False) -> bytes:
    picture = Image.fromarray(255 - image if invert else image)
    if scale > 1:
        picture = picture.resize((28 * scale, 28 * scale), Image.BILINEAR)
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG")
    return buffer.getvalue()
