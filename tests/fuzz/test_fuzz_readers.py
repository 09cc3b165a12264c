"""Property and fuzz tests: every reader of outside input either gives its clean error or a
correct result, and nothing it reads runs code.

Each test tries 200 inputs in `make test` and 10,000 in `make fuzz`; the counts are printed at
the end of the run. An input that ends any other way fails the test (Hypothesis shrinks it and
prints it; keep it below as a regression example).
"""

from __future__ import annotations

import codecs
import contextlib
import csv
import io
import os
import pickle
import subprocess
import zipfile

import numpy as np
import pytest
import torch
from hypothesis import assume, example, given
from hypothesis import strategies as st

from helpers import fuzz_target
from trainlab.config import TrainConfig
from trainlab.data.idx import IDX_DTYPES, encode_idx, parse_idx
from trainlab.data.images import ImageError, mnist_style, read_image
from trainlab.engine.checkpoint import load_checkpoint, save_checkpoint
from trainlab.errors import CheckpointError, ConfigError, DataError, TrainlabError

pytestmark = pytest.mark.fuzz

# --- IDX ----------------------------------------------------------------------------------


@given(
    code=st.sampled_from([*IDX_DTYPES, 0x00, 0x0A, 0xFF]),
    dims=st.lists(st.integers(-(2**31), 2**31 - 1), max_size=4)
    | st.lists(st.integers(0, 6), min_size=1, max_size=3),
    magic=st.sampled_from([b"\x00\x00", b"\x00\x01", b"\xff\xff"]),
    tail=st.binary(max_size=600),
    ndim_byte=st.none() | st.integers(0, 255),
)
@example(code=0x08, dims=[-1, -5], magic=b"\x00\x00", tail=b"\x00" * 5, ndim_byte=None)
@example(code=0x08, dims=[2**31 - 1] * 3, magic=b"\x00\x00", tail=b"", ndim_byte=None)
@fuzz_target("idx reader")
def test_idx_reader(code, dims, magic, tail, ndim_byte):
    header = magic + bytes([code, len(dims) if ndim_byte is None else ndim_byte])
    content = header + np.asarray(dims, dtype=">i4").tobytes() + tail
    try:
        array = parse_idx(
            content, "fuzz.idx", dtype=np.dtype(IDX_DTYPES.get(code, ">u1")).newbyteorder("=").name
        )
    except DataError:
        return
    # accepted: it must be exactly what the bytes say
    assert encode_idx(array.numpy()) == content
    if ndim_byte is None:
        assert list(array.shape) == dims


@given(st.binary(max_size=2000))
@fuzz_target("idx reader")
def test_idx_reader_random_bytes(content):
    with contextlib.suppress(DataError):
        parse_idx(content, "random.idx")


@given(st.lists(st.integers(1, 5), min_size=1, max_size=3), st.data())
@fuzz_target("idx reader")
def test_idx_valid_files_round_trip_and_truncations_are_refused(shape, data):
    array = np.asarray(
        data.draw(
            st.lists(
                st.integers(0, 255), min_size=int(np.prod(shape)), max_size=int(np.prod(shape))
            )
        ),
        dtype=np.uint8,
    ).reshape(shape)
    content = encode_idx(array)
    assert np.array_equal(parse_idx(content, "ok.idx").numpy(), array)
    cut = data.draw(st.integers(0, len(content) - 1))
    with pytest.raises(DataError):
        parse_idx(content[:cut], "cut.idx")


# --- checkpoints --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def checkpoint_bytes(tmp_path_factory):
    from trainlab.models import build_model
    from trainlab.runs import describe_run

    path = tmp_path_factory.mktemp("ckpt") / "good.pt"
    model = build_model("mlp", input_shape=(1, 8, 8), outputs=3, hidden=[4])

    class Data:
        name, kind, task, classes, input_shape, mean, std, info = (
            "x",
            "images",
            "classification",
            ["a", "b", "c"],
            (1, 8, 8),
            [0.5],
            [0.5],
            {},
        )

    from trainlab.data import InputTransform

    description = describe_run(
        TrainConfig.from_dict({"model": "mlp", "model_options": {"hidden": [4]}}),
        model,
        Data,
        InputTransform([0.5], [0.5]),
    )
    save_checkpoint(path, {**description, "state_dict": model.state_dict(), "epoch": 1, "batch": 0})
    return path.read_bytes()


def _load_bytes(tmp_path_factory, content: bytes):
    path = tmp_path_factory.mktemp("c") / "x.pt"
    path.write_bytes(content)
    return load_checkpoint(path)


@given(data=st.data())
@fuzz_target("checkpoint loader")
def test_checkpoint_loader_on_damaged_files(checkpoint_bytes, tmp_path_factory, data):
    kind = data.draw(st.sampled_from(["random", "truncated", "mutated"]))
    if kind == "random":
        content = data.draw(st.binary(max_size=3000))
    elif kind == "truncated":
        content = checkpoint_bytes[: data.draw(st.integers(0, len(checkpoint_bytes) - 1))]
    else:
        content = bytearray(checkpoint_bytes)
        for _ in range(data.draw(st.integers(1, 8))):
            at = data.draw(st.integers(0, len(content) - 1))
            content[at] = data.draw(st.integers(0, 255))
        content = bytes(content)
    try:
        payload = _load_bytes(tmp_path_factory, content)
    except CheckpointError:
        return
    assert isinstance(payload["state_dict"], dict)  # accepted: it passed validation


class _Global:
    """Pickles as a call of ``target(*args)``: what a hostile checkpoint carries."""

    def __init__(self, target, args):
        self.target, self.args = target, args

    def __reduce__(self):
        return (self.target, self.args)


@pytest.mark.parametrize(
    "make",
    [
        lambda canary: (os.system, (f"touch {canary}",)),
        lambda canary: (eval, (f"open({str(canary)!r}, 'w')",)),
        lambda canary: (subprocess.Popen, (["touch", str(canary)],)),
        lambda canary: (exec, (f"open({str(canary)!r}, 'w').close()",)),
        lambda canary: (torch.save, ({}, str(canary))),  # a torch internal that writes a file
    ],
)
@fuzz_target("checkpoint loader")
def test_pickled_calls_never_run(tmp_path, make):
    canary = tmp_path / "ran"
    target, args = make(canary)
    path = tmp_path / "evil.pt"
    torch.save({"format": "trainlab-checkpoint", "version": 1, "x": _Global(target, args)}, path)
    with pytest.raises(CheckpointError, match="refused"):
        load_checkpoint(path)
    # a bare pickle (not a zip) too
    raw = tmp_path / "evil.pkl"
    raw.write_bytes(pickle.dumps(_Global(target, args), protocol=2))
    with pytest.raises(CheckpointError):
        load_checkpoint(raw)
    assert not canary.exists()


@given(
    change=st.sampled_from(
        [
            ("drop", "state_dict"),
            ("drop", "config"),
            ("set", "state_dict", {"0.weight": "not a tensor"}),
            ("set", "config", {"lr": "fast"}),
            ("set", "config", {"no_such_setting": 1}),
            ("set", "epoch", -3),
            ("set", "data", [1, 2]),
            ("shape", "1.weight"),
            ("dtype", "1.weight"),
            ("rename", "1.weight"),
        ]
    )
)
@fuzz_target("checkpoint loader")
def test_wrong_keys_shapes_and_dtypes_are_named(checkpoint_bytes, tmp_path_factory, change):
    from trainlab.workflow import load_model

    path = tmp_path_factory.mktemp("w") / "good.pt"
    path.write_bytes(checkpoint_bytes)
    payload = load_checkpoint(path)
    payload.pop("path")
    state = dict(payload["state_dict"])
    if change[0] == "drop":
        payload.pop(change[1])
    elif change[0] == "set":
        payload[change[1]] = change[2]
    elif change[0] == "shape":
        state[change[1]] = torch.zeros(2, 2)
    elif change[0] == "dtype":
        state[change[1]] = state[change[1]].double()
    else:
        state["renamed"] = state.pop(change[1])
    if change[0] in ("shape", "dtype", "rename"):
        payload["state_dict"] = state
    bad = path.with_name("bad.pt")
    save_checkpoint(bad, payload)
    with pytest.raises(CheckpointError) as caught:
        load_model(bad)
    message = str(caught.value)
    assert str(bad) in message
    if change[0] in ("shape", "dtype", "rename"):
        assert change[1] in message


# --- CIFAR batches --------------------------------------------------------------------------


def _cifar_batches() -> list[bytes]:
    """A valid batch as numpy 2 pickles it: protocol 2 (``_codecs.encode`` bytes), 4 and 5
    (``numpy._core.numeric._frombuffer``), with numpy numbers among the labels."""
    rng = np.random.default_rng(0)
    batch = {
        "batch_label": "fuzz batch",
        "labels": [*rng.integers(0, 10, 2).tolist(), np.int64(7)],
        "data": rng.integers(0, 256, (3, 3072), dtype=np.uint8),
    }
    return [pickle.dumps(batch, protocol=protocol) for protocol in (2, 4, 5)]


CIFAR_BATCHES = _cifar_batches()


def _read_cifar(content: bytes) -> None:
    from trainlab.data.cifar import read_batch

    try:
        images, labels = read_batch(content, "fuzz_batch", num_classes=10)
    except DataError:
        return
    # accepted: it must be what a batch is
    assert images.dtype == torch.uint8 and images.shape[1:] == (3, 32, 32)
    assert labels.dtype == torch.int64 and labels.shape == (len(images),)
    assert len(labels) == 0 or 0 <= int(labels.min()) <= int(labels.max()) < 10


@given(st.binary(max_size=3000))
@fuzz_target("cifar batch reader")
def test_cifar_reader_random_bytes(content):
    _read_cifar(content)


@given(data=st.data())
@example(data=None)  # the valid batches themselves are read as written
@fuzz_target("cifar batch reader")
def test_cifar_reader_on_damaged_batches(data):
    if data is None:
        for content in CIFAR_BATCHES:
            _read_cifar(content)
        return
    content = bytearray(data.draw(st.sampled_from(CIFAR_BATCHES)))
    if data.draw(st.booleans()):
        content = content[: data.draw(st.integers(0, len(content) - 1))]
    # the opcodes and names sit in the first and last few hundred bytes, the pixels between
    near = st.integers(0, min(400, len(content) - 1)) | st.integers(
        max(0, len(content) - 400), max(0, len(content) - 1)
    )
    for _ in range(data.draw(st.integers(0, 8)) if content else 0):
        at = data.draw(near | st.integers(0, len(content) - 1))
        if data.draw(st.booleans()):
            content[at] = data.draw(st.integers(0, 255))
        else:
            content[at:at] = data.draw(st.binary(min_size=1, max_size=8))
    _read_cifar(bytes(content))


def test_a_tiny_batch_cannot_make_the_reader_allocate_gigabytes():
    """Found by the fuzzer: one memo index of 680 million in a 9 KB batch made CPython's
    unpickler zero a table of 5 GB (31 s, 10 GB resident); the opcodes are checked first."""
    import struct
    import tracemalloc

    from trainlab.data.cifar import read_batch

    content = CIFAR_BATCHES[1]  # protocol 4
    at = content.index(pickle.MEMOIZE)
    bomb = content[:at] + pickle.LONG_BINPUT + struct.pack("<I", 680_825_748) + content[at + 1 :]
    tracemalloc.start()
    try:
        with pytest.raises(DataError, match="memo index 680825748"):
            read_batch(bomb, "bomb")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 1_000_000


@pytest.mark.parametrize(
    "make",
    [
        lambda canary: (os.system, (f"touch {canary}",)),
        lambda canary: (eval, (f"open({str(canary)!r}, 'w')",)),
        lambda canary: (subprocess.Popen, (["touch", str(canary)],)),
        lambda canary: (np.save, (str(canary), np.zeros(1))),  # a numpy function that writes
        lambda canary: (codecs.encode, (str(canary), "rot13")),  # the one codec call, misused
    ],
)
@fuzz_target("cifar batch reader")
def test_cifar_batches_that_name_code_never_run_it(tmp_path, make):
    from trainlab.data.cifar import read_batch

    canary = tmp_path / "ran"
    target, args = make(canary)
    for protocol in (2, 4, 5):
        content = pickle.dumps({"data": _Global(target, args), "labels": []}, protocol=protocol)
        with pytest.raises(DataError, match="refused: the file asks for"):
            read_batch(content, "evil_batch")
    assert not list(tmp_path.iterdir())


# --- config ---------------------------------------------------------------------------------

FIELDS = [f for f in TrainConfig.__dataclass_fields__]
values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**20), 10**20),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
    st.lists(st.one_of(st.integers(-5, 10**9), st.floats(), st.text(max_size=3)), max_size=4),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)


@given(st.dictionaries(st.sampled_from(FIELDS) | st.text(max_size=10), values, max_size=6))
@fuzz_target("config")
def test_config_values(candidate):
    try:
        cfg = TrainConfig.from_dict(candidate, source="fuzz")
    except ConfigError:
        return
    assert TrainConfig.from_dict(cfg.to_dict()) == cfg  # accepted: it round-trips


@given(st.text(max_size=400))
@fuzz_target("config")
def test_config_toml_text(text):
    import tomllib

    try:
        values_read = tomllib.loads(text).get("config", {})
        TrainConfig.from_dict(values_read if isinstance(values_read, dict) else {}, source="toml")
    except (tomllib.TOMLDecodeError, ConfigError):
        pass


@given(
    name=st.sampled_from(["seed-mlp", "d2l-lenet", "seed-basics", "best-10min"]),
    overrides=st.dictionaries(st.sampled_from(FIELDS), values, max_size=3),
)
@fuzz_target("config")
def test_recipe_overrides(name, overrides):
    from trainlab.resolve import resolve_config

    with contextlib.suppress(TrainlabError):
        resolve_config({**overrides, "recipe": name})


# --- images ---------------------------------------------------------------------------------

FORMATS = ["PNG", "JPEG", "GIF", "BMP", "WEBP", "TIFF"]
MODES = ["L", "RGB", "RGBA", "P", "1", "LA", "I;16", "CMYK", "I", "F"]


def _encode(mode: str, fmt: str, w: int, h: int, seed: int) -> bytes | None:
    from PIL import Image

    rng = np.random.default_rng(seed)
    image = Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8), mode="RGB")
    try:
        image = image.convert(mode) if mode not in ("I;16",) else image.convert("L").convert("I;16")
        buffer = io.BytesIO()
        image.save(buffer, format=fmt)
    except (OSError, ValueError, KeyError):
        return None  # this format cannot hold this mode
    return buffer.getvalue()


@given(
    mode=st.sampled_from(MODES),
    fmt=st.sampled_from(FORMATS),
    w=st.integers(1, 300),
    h=st.integers(1, 300),
    seed=st.integers(0, 2**16),
    cut=st.none() | st.floats(0, 0.999),
)
@fuzz_target("image decoding")
def test_image_decoding(mode, fmt, w, h, seed, cut):
    content = _encode(mode, fmt, w, h, seed)
    assume(content is not None)
    if cut is not None:
        content = content[: int(len(content) * cut)]
    from PIL import Image

    buffers = Image.core.get_stats()["new_count"]  # image memories Pillow has allocated
    try:
        grey = read_image(content, max_pixels=40_000)
        assert grey.dtype == np.float32 and grey.ndim == 2
        assert float(grey.min()) >= 0.0 and float(grey.max()) <= 1.0
        assert grey.size <= 40_000  # the work is bounded: nothing past the limit is decoded
        out = mnist_style(grey).image
        assert out.shape == (28, 28)
    except ImageError as e:
        if "more than the limit" in str(e) or "refused before decoding" in str(e):
            assert Image.core.get_stats()["new_count"] == buffers  # refused before decoding
    if cut is None and w * h > 40_000:
        with pytest.raises(ImageError, match="refused before decoding|more than the limit"):
            read_image(content, max_pixels=40_000)


@given(st.binary(max_size=4000))
@fuzz_target("image decoding")
def test_image_decoding_random_bytes(content):
    with contextlib.suppress(ImageError):
        read_image(content)


def test_zip_of_a_checkpoint_with_no_pickle_is_refused(tmp_path):
    path = tmp_path / "empty.pt"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("archive/nothing.txt", "x")
    with pytest.raises(CheckpointError):
        load_checkpoint(path)


# --- labels CSV -----------------------------------------------------------------------------

_CSV_CELLS = st.sampled_from(
    ["id", "file", "label", "class", "split", "is_valid", "train", "val", "test", "true", "a.png",
     "cat", "dog", "", " ", '"', '""', "x,y", "\n", "\r\n", "\x00", "é", "\ufeff"]
)  # fmt: skip


@given(st.binary(max_size=2000))
@fuzz_target("labels csv reader")
def test_labels_csv_random_bytes(content):
    from trainlab.data.csv_labels import parse_labels

    with contextlib.suppress(DataError):
        parse_labels(content, "fuzz.csv")


@given(st.lists(st.lists(_CSV_CELLS, max_size=5), min_size=1, max_size=8), st.booleans())
@fuzz_target("labels csv reader")
def test_labels_csv_rows(rows, quoted):
    from trainlab.data.csv_labels import parse_labels

    buffer = io.StringIO()
    csv.writer(buffer, quoting=csv.QUOTE_ALL if quoted else csv.QUOTE_MINIMAL).writerows(rows)
    try:
        table = parse_labels(buffer.getvalue().encode(), "fuzz.csv")
    except DataError:
        return
    # accepted: a non-empty name and label per row, each split one of the four
    assert table.names and len(table.names) == len(table.labels) == len(table.splits)
    assert all(table.names) and all(table.labels)
    assert set(table.splits) <= {None, "train", "val", "test"}


# --- tables ---------------------------------------------------------------------------------

_TABLE_CELLS = st.sampled_from(
    ["a", "b", "y", "1", "2", "2.5", "-3e2", "nan", "inf", "NA", "?", "", " ", "x", "é", '"',
     "1_000", "0x10", "\x00", "\n", "True", "1e400"]
)  # fmt: skip


@given(st.binary(max_size=2000))
@fuzz_target("table reader")
def test_table_csv_random_bytes(content):
    from trainlab.data.table_read import parse_csv

    with contextlib.suppress(DataError):
        table = parse_csv(content, "fuzz.csv")
        assert all(len(cells) == len(table) for cells in table.cells.values())


@given(st.lists(st.lists(_TABLE_CELLS, min_size=2, max_size=4), min_size=1, max_size=12))
@fuzz_target("table reader")
def test_table_rows_load_or_are_refused_cleanly(rows):
    """Any rows, the last column the target: a clean error, or a dataset whose features are
    finite and whose splits hold every row."""
    import tempfile

    from trainlab.data import load_dataset

    buffer = io.StringIO()
    csv.writer(buffer).writerows(rows)
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "t.csv")
        with open(path, "w", encoding="utf-8", newline="") as f:
            f.write(buffer.getvalue())
        target = rows[0][-1].strip() or "y"
        try:
            data = load_dataset(f"table:{path}", target=target)
        except (DataError, ConfigError):
            return
    assert torch.isfinite(data.train_x).all() and torch.isfinite(data.test_x).all()
    assert len(data.test_x) == len(data.info["test_rows"]) and len(data.train_x)
