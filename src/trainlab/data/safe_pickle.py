"""Pickles of numpy arrays and plain values, read without running anything a file names.

Example:
    >>> from trainlab.data.safe_pickle import load_arrays
    >>> batch = load_arrays(Path("data_batch_1").read_bytes(), "data_batch_1", "a CIFAR batch")
    >>> batch["data"].shape
    (10000, 3072)

CIFAR's batches, and the copies people write in their format, are pickles, and ``pickle.load``
calls whatever a file names. This reader builds numpy arrays as numpy 1.x and 2.x write them with
any protocol (0 to 5: ``numpy.core`` or ``numpy._core``, ``_reconstruct`` or ``_frombuffer``),
and lists, dicts, tuples, numbers, strings and bytes. Anything else is refused, by the name the
file asked for, before it is built. The opcodes are walked first, building nothing, so a damaged
or hostile file cannot make CPython's unpickler allocate gigabytes either: a memo index of 680
million in a 9 KB file makes it zero a table of 5 GB.
"""

from __future__ import annotations

import importlib
import io
import pickle
import pickletools
from typing import Any

import numpy as np

from trainlab.errors import DataError

# Opcodes that store or fetch a memo entry by index: a file written by pickle numbers its
# entries 0, 1, 2, ..., so an index is never larger than the count of opcodes before it.
_MEMO_OPCODES = {"PUT", "BINPUT", "LONG_BINPUT", "GET", "BINGET", "LONG_BINGET"}


class _Refused(pickle.UnpicklingError):
    """The file asks for something other than a plain numpy array or value."""


class _ArrayType:
    """Stands for ``numpy.ndarray`` where a pickle names it: the type ``_reconstruct`` is given,
    never called (``ndarray(shape)`` straight from a file could ask for any amount of memory)."""

    def __new__(cls, *_: Any, **__: Any) -> Any:
        raise _Refused("numpy.ndarray(…) called with a shape, not as numpy writes an array")


def _latin1(text: str, encoding: str = "latin1") -> bytes:
    """``_codecs.encode`` as pickles of protocol 2 and below write bytes, and nothing more."""
    if encoding not in ("latin1", "latin-1") or not isinstance(text, str):
        raise _Refused(f"_codecs.encode with {encoding!r}")
    return text.encode("latin1")


def _numpy_part(inner: str, name: str) -> Any:
    """One of numpy's own unpickling functions, where this numpy keeps it (numpy 2 moved
    ``numpy.core`` to ``numpy._core``; the deprecated name is not imported)."""
    for package in ("numpy._core", "numpy.core"):
        try:
            return getattr(importlib.import_module(f"{package}.{inner}"), name)
        except (ImportError, AttributeError):
            continue
    raise _Refused(f"numpy.core.{inner}.{name} (not in this numpy)")


def _reconstruct(array_type: Any, shape: Any, dtype: Any) -> np.ndarray:
    """numpy's ``_reconstruct`` for a plain array: numpy writes ``(ndarray, (0,), b'b')`` and
    then the array's state, so any other type or a non-empty shape is not numpy's own."""
    if array_type is not _ArrayType or tuple(shape) != (0,):
        raise _Refused("numpy's _reconstruct of something other than a plain numpy array")
    return _numpy_part("multiarray", "_reconstruct")(np.ndarray, (0,), dtype)


class _ArraysOnly(pickle.Unpickler):
    """Builds numpy arrays and plain values; every other global the file names is refused."""

    NUMPY_PARTS = {
        ("multiarray", "scalar"),  # a numpy number, as a label can be
        ("numeric", "_frombuffer"),  # protocol 5: the array straight from its buffer
    }

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) == ("numpy", "dtype"):
            return np.dtype
        if (module, name) == ("numpy", "ndarray"):
            return _ArrayType
        if (module, name) == ("_codecs", "encode"):
            return _latin1
        core, _, inner = module.rpartition(".")
        if core in ("numpy.core", "numpy._core"):
            if (inner, name) == ("multiarray", "_reconstruct"):  # protocols 0-4
                return _reconstruct
            if (inner, name) in self.NUMPY_PARTS:
                return _numpy_part(inner, name)
        raise _Refused(f"{module}.{name}")


def _check_opcodes(content: bytes) -> None:
    """Walk the opcodes without building anything: a truncated argument, an unknown opcode or
    a memo index past the opcodes before it is refused here."""
    for count, (opcode, arg, _) in enumerate(pickletools.genops(content)):
        if opcode.name in _MEMO_OPCODES and not 0 <= int(arg) <= count:
            raise pickle.UnpicklingError(f"memo index {arg} at opcode {count}")


def load_arrays(content: bytes, path: str, what: str, example: str) -> Any:
    """The value a pickle holds, built from numpy arrays and plain values only.

    Args:
        content: the file's bytes.
        path: what to call the file in errors.
        what: what the file should be, for errors ("a CIFAR batch").
        example: how to write such a file, for the refusal ("pickle.dump({...}, f)").

    Raises:
        DataError: the file is damaged, or names anything else (the message says what).
    """
    try:
        _check_opcodes(content)
        return _ArraysOnly(io.BytesIO(content), encoding="latin1").load()
    except _Refused as e:
        raise DataError(
            f"{path}: refused: the file asks for {e}, and {what} is read as numpy arrays, lists, "
            "dicts, numbers and strings only (nothing else a data file names is built or run). "
            f"Write it as plain values: {example}."
        ) from None
    except Exception as e:  # noqa: BLE001 - any failure to read is reported the same way
        raise DataError(f"{path}: not {what} ({_first_line(e)}).") from None


def _first_line(error: Exception) -> str:
    text = str(error).strip()
    return (text.splitlines()[0] if text else type(error).__name__)[:200]
