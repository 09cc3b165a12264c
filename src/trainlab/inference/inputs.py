"""What ``trainlab predict`` reads from the inputs it is given: files, globs, and folders, which
may hold their images in class folders (``test/<class>/...``, the layout data often comes in).

An image found in a class folder carries that folder's name as its true class. When every such
name is one of the model's classes, predict can say how often the model is right on them.

Example:
    >>> found = find_inputs(["digit.png", "mnist_png/test", "photos/*.jpg"])
    >>> truths, note = known_truths(found, ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"])
"""

from __future__ import annotations

import glob
from dataclasses import dataclass, field
from pathlib import Path

from trainlab.data.root import IMAGE_SUFFIXES


@dataclass
class Found:
    """The image files to predict, in order, and what gave none."""

    files: list[str] = field(default_factory=list)
    # the class folder each file was found in (FOLDER/<class>/...), None for the others
    folders: list[str | None] = field(default_factory=list)
    problems: list[tuple[str, str]] = field(default_factory=list)  # (input, what was wrong)
    # which of the inputs given each file and each problem came from (for answers in order)
    file_inputs: list[int] = field(default_factory=list)
    problem_inputs: list[int] = field(default_factory=list)


def _is_image(path: Path) -> bool:
    return (
        path.is_file() and not path.name.startswith(".") and path.suffix.lower() in IMAGE_SUFFIXES
    )


def _in_folder(folder: Path) -> list[tuple[str, str | None]]:
    """The folder's own images, then each class folder's (sorted, hidden ones left out; a class
    folder's images may lie in folders of their own below it)."""
    entries = sorted(folder.iterdir())
    found: list[tuple[str, str | None]] = [(str(p), None) for p in entries if _is_image(p)]
    for class_dir in (p for p in entries if p.is_dir() and not p.name.startswith(".")):
        images = sorted(
            p
            for p in class_dir.rglob("*")
            if _is_image(p)
            and not any(part.startswith(".") for part in p.relative_to(class_dir).parts)
        )
        found += [(str(p), class_dir.name) for p in images]
    return found


def find_inputs(inputs: list[str]) -> Found:
    """Files from files, folders (their images, and their class folders' images) and globs;
    each file once, in the order given."""
    pairs: list[tuple[str, str | None]] = []
    came_from: list[int] = []
    found = Found()
    for at, item in enumerate(inputs):
        problems = len(found.problems)
        path = Path(item)
        if path.is_dir():
            images = _in_folder(path)
            if not images:
                found.problems.append(
                    (item, f"no images ({', '.join(IMAGE_SUFFIXES)}) in this folder or its folders")
                )
            pairs += images
        elif path.is_file():
            pairs.append((item, None))
        elif any(ch in item for ch in "*?["):
            matched = sorted(p for p in glob.glob(item) if Path(p).is_file())
            if not matched:
                found.problems.append((item, "no file matches this pattern"))
            pairs += [(p, None) for p in matched]
        else:
            found.problems.append((item, "no such file or folder"))
        found.problem_inputs += [at] * (len(found.problems) - problems)
        came_from += [at] * (len(pairs) - len(came_from))
    seen: set[Path] = set()  # a file named and also inside a folder given is predicted once
    for (name, folder), at in zip(pairs, came_from, strict=True):
        key = Path(name).resolve()
        if key not in seen:
            seen.add(key)
            found.files.append(name)
            found.folders.append(folder)
            found.file_inputs.append(at)
    return found


def known_truths(found: Found, classes: list[str]) -> tuple[list[str | None] | None, str | None]:
    """Each file's true class when its class folders are named after the model's classes.

    Returns:
        (truths, None): the class folder's name per file (None for a file not in one), when
        every class folder is one of ``classes``; (None, why) when some are not (a note for
        the user); (None, None) when no file was in a class folder.
    """
    names = {folder for folder in found.folders if folder is not None}
    if not names:
        return None, None
    unknown = sorted(names - set(classes))
    if unknown:
        shown = ", ".join(unknown[:5]) + (
            f" … and {len(unknown) - 5} more" if len(unknown) > 5 else ""
        )
        return None, (
            f"no accuracy: the folder name(s) {shown} are not classes of this model "
            f"(its classes: {', '.join(classes[:12])}{' …' if len(classes) > 12 else ''})"
        )
    return list(found.folders), None
