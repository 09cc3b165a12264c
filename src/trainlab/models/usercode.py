"""A user's own ``nn.Module`` by reference: ``path/to/file.py:Class`` or ``package.module:factory``.

Example:
    $ trainlab train --model my_nets.py:SmallResNet --model-arg width=12
    $ trainlab eval runs/<id> --trust-code

The run records the reference, the file's absolute path and its sha256. Importing runs the
file's code, so loading such a checkpoint later (eval, predict, export, serve, resume) imports
it only when the user passes ``--trust-code`` (``trust_code=True`` from Python), as
transformers' ``trust_remote_code``; without it the error names the file and nothing is
imported. A file that changed since training is said so. Weights are still read with
``weights_only=True``.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import logging
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

from trainlab.errors import CheckpointError, ConfigError
from trainlab.models.registry import ModelSpec, spec_for

_LOG = logging.getLogger(__name__)

_LOADED: dict[tuple[str, str], ModelSpec] = {}


def is_reference(name: str) -> bool:
    return ":" in name


def split_reference(name: str) -> tuple[str, str, str]:
    """(kind, where, attribute): kind "file" for ``path.py:Attr``, "module" for
    ``package.module:attr``."""
    where, _, attr = name.rpartition(":")
    if not where or not attr.replace(".", "_").isidentifier():
        raise ConfigError(
            f"--model {name!r}: expected FILE.py:NAME or package.module:NAME, with NAME a class "
            "or a function that returns an nn.Module."
        )
    if where.endswith(".py") or "/" in where or "\\" in where:
        return "file", where, attr
    if all(part.isidentifier() for part in where.split(".")):
        return "module", where, attr
    raise ConfigError(
        f"--model {name!r}: {where!r} is neither a .py file nor a dotted module name."
    )


def normalise(name: str) -> str:
    """A file reference with its path made absolute, so a resume from elsewhere finds it."""
    if not is_reference(name) or name.startswith("torchvision:"):
        return name
    kind, where, attr = split_reference(name)
    return f"{Path(where).resolve()}:{attr}" if kind == "file" else name


def sha256_of(path: str | Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def source_of(name: str) -> dict[str, Any]:
    """Where a reference's code is, without importing it (a module is found, not run)."""
    kind, where, attr = split_reference(name)
    if kind == "file":
        path = Path(where).resolve()
        if not path.is_file():
            raise ConfigError(f"--model {name}: {path} does not exist.")
        return {"kind": "file", "path": str(path), "attr": attr, "sha256": sha256_of(path)}
    try:
        found = importlib.util.find_spec(where)
    except (ImportError, ValueError):
        found = None
    if found is None:
        raise ConfigError(
            f"--model {name}: no module '{where}' on the Python path (is its package installed, "
            "or its folder in PYTHONPATH?)."
        )
    path = found.origin if found.origin and Path(found.origin).is_file() else None
    return {
        "kind": "module",
        "module": where,
        "attr": attr,
        "path": path,
        "sha256": sha256_of(path) if path else None,
    }


def refuse_untrusted(source: dict[str, Any], what: str) -> CheckpointError:
    where = source.get("path") or source.get("module")
    return CheckpointError(
        f"{what}: the model is your own code, {where} "
        f"({source.get('attr')}, sha256 {str(source.get('sha256'))[:12]}…). Loading it would "
        "import and run that file, so trainlab does not without your word: pass --trust-code "
        "(Python: trust_code=True) if you trust it. Nothing was imported."
    )


def reference_spec(
    name: str,
    *,
    trust_code: bool,
    expected_sha256: str | None = None,
    what: str = "",
) -> ModelSpec:
    """Import a reference (only when trusted) and make a spec of what it names."""
    source = source_of(name)
    if not trust_code:
        raise refuse_untrusted(source, what or f"--model {name}")
    if expected_sha256 and source["sha256"] and source["sha256"] != expected_sha256:
        _LOG.warning(
            f"warning: {source['path']} changed since this run was trained (sha256 "
            f"{expected_sha256[:12]}… then, {source['sha256'][:12]}… now); the weights may not "
            "fit the code any more."
        )
    key = (name, str(source["sha256"]))
    if key not in _LOADED:
        module = _import(source, name)
        target = module
        for part in source["attr"].split("."):
            target = getattr(target, part, None)
            if target is None:
                raise ConfigError(
                    f"--model {name}: {source.get('path') or source['module']} has no "
                    f"'{source['attr']}'."
                )
        if not callable(target):
            raise ConfigError(f"--model {name}: '{source['attr']}' is not a class or function.")
        summary = (getattr(target, "__doc__", None) or "").strip().split("\n")[0]
        spec = spec_for(normalise(name), target, summary=summary)
        _LOADED[key] = replace(spec, source=source)
    return _LOADED[key]


def _import(source: dict[str, Any], name: str):
    if source["kind"] == "module":
        try:
            return importlib.import_module(source["module"])
        except Exception as e:  # noqa: BLE001 - the user's module failed: say so, with why
            raise ConfigError(
                f"--model {name}: importing {source['module']} failed: {type(e).__name__}: {e}"
            ) from None
    path = Path(source["path"])
    module_name = f"trainlab_user.{path.stem}_{source['sha256'][:12]}"
    spec = importlib.util.spec_from_file_location(module_name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module  # dataclasses and pickling look the module up
    sys.path.insert(0, str(path.parent))  # the file may import its neighbours
    try:
        spec.loader.exec_module(module)
    except Exception as e:  # noqa: BLE001
        del sys.modules[module_name]
        raise ConfigError(
            f"--model {name}: running {path} failed: {type(e).__name__}: {e}"
        ) from None
    finally:
        sys.path.remove(str(path.parent))
    return module


def class_reference(model: Any) -> tuple[str | None, str | None]:
    """(``module:QualName``, None) for a model whose class can be imported again, or
    (None, why not) for one defined in ``__main__``, a notebook or a function."""
    import inspect

    cls = type(model)
    module, qualname = cls.__module__, cls.__qualname__
    if module == "__main__" or "<locals>" in qualname:
        where = "in a function" if "<locals>" in qualname else "in the script or notebook"
        return None, (
            f"its class {qualname} is defined {where} that ran it, so nothing can import it "
            f"again. Move the class into a .py file, then train it with `trainlab train --model "
            f"FILE.py:{cls.__name__}` (or build it with trainlab.build_model('FILE.py:"
            f"{cls.__name__}', data)), and eval, predict, export and serve can load it."
        )
    if module.startswith("trainlab_user."):
        return None, "built from a file reference without build_model"
    try:
        inspect.getsourcefile(cls)
    except TypeError:
        return None, f"its class {qualname} has no source file"
    return f"{module}:{qualname}", None
