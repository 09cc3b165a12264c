"""What ``trainlab predict`` reads from the inputs it is given: files, folders and globs.

Example:
    >>> files, problems = expand_inputs(["digit.png", "scans/", "photos/*.jpg"])
"""

from __future__ import annotations

import glob
from pathlib import Path

from trainlab.data.root import IMAGE_SUFFIXES


def expand_inputs(inputs: list[str]) -> tuple[list[str], list[tuple[str, str]]]:
    """Files from files, folders (their images, sorted) and globs; and (input, problem) pairs
    for what gave none."""

    files, problems = [], []
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            found = sorted(
                str(p) for p in path.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
            )
            if not found:
                problems.append((item, f"no images ({', '.join(IMAGE_SUFFIXES)}) in this folder"))
            files += found
        elif path.is_file():
            files.append(item)
        elif any(ch in item for ch in "*?["):
            found = sorted(p for p in glob.glob(item) if Path(p).is_file())
            if not found:
                problems.append((item, "no file matches this pattern"))
            files += found
        else:
            problems.append((item, "no such file or folder"))
    seen: set[Path] = set()  # a file named and also inside a folder given is predicted once
    unique = []
    for name in files:
        key = Path(name).resolve()
        if key not in seen:
            seen.add(key)
            unique.append(name)
    return unique, problems
