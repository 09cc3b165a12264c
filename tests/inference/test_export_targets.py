"""trainlab export --format onnx,onnx-int8,openvino,pt2: every target scored on the run's test
split beside the checkpoint, refused when it loses, and listed in exports.json; the ONNX graph
answers "none of these" and gives the probabilities as predict does."""

import json
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch

from helpers import run_cli
from trainlab import Trainer, build_model
from trainlab.cli import main
from trainlab.data import load_dataset
from trainlab.inference import Predictor
from trainlab.inference.export import _write_onnx, onnx_session
from trainlab.inference.targets import TARGETS, Target, onnx_float, register
from trainlab.resolve import resolve_config

# pt2 is exported and checked in test_export.py; it is the slowest to write and run
ALL = ["onnx", "onnx-int8", "openvino"]
FASHION = Path("/usr/share/datasets/fashion-mnist")  # Debian's dataset-fashion-mnist


@pytest.fixture(scope="module")
def exported(default_run, tmp_path_factory):
    """The default cnn exported to every target at once, as a user would."""
    folder = tmp_path_factory.mktemp("targets") / "out"
    proc = run_cli("export", str(default_run), "--format", ",".join(ALL), "-o", str(folder),
                   "--json", timeout=600)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    return folder, {r["target"]: r for r in result["targets"]}, result


def test_int8_is_within_half_a_point_of_the_checkpoint_and_timed_against_float(exported):
    folder, targets, result = exported
    int8 = targets["onnx-int8"]
    assert int8["status"] == "kept" and (folder / "model.int8.onnx").is_file()
    assert int8["drop_points"] <= 0.5
    assert abs(result["reference"]["value"] - int8["value"] - int8["drop_points"]) < 1e-3
    assert int8["calibration"]["images"] == 300 and int8["calibration"]["split"] == "train"
    assert int8["size_bytes"] < targets["onnx"]["size_bytes"] / 2  # int8 weights
    assert set(int8["float32"]["latency_ms"]) == {"1", "64"}  # float32 timed in the same run
    model = onnx.load(str(folder / "model.int8.onnx"))
    assert any(node.op_type == "QuantizeLinear" for node in model.graph.node)  # QDQ


def test_openvino_agrees_with_the_checkpoint_or_is_refused_with_figures(exported):
    folder, targets, _ = exported
    ov = targets["openvino"]
    if ov["status"] == "kept":
        assert ov["agreement"] >= 99.5
        assert (folder / "model.openvino.xml").is_file()
        assert (folder / "model.openvino.bin").is_file()
    else:
        assert ov["status"] == "refused" and "%" in ov["refused_because"]


def test_exports_json_lists_every_target_with_its_figures(exported, default_run):
    folder, targets, result = exported
    table = json.loads((default_run / "exports.json").read_text())
    assert set(ALL) <= set(table["targets"])
    assert table["reference"]["test_inputs"] == 10000
    for name in ALL:
        entry = table["targets"][name]
        assert entry["status"] in ("kept", "refused")
        assert entry["size_bytes"] > 0 and 0 <= entry["agreement"] <= 100
        assert entry["latency_ms"]["1"] > 0 and entry["latency_ms"]["64"] > 0
        assert entry["metric"] == "accuracy" and entry["value"] > 95
        assert entry["needs"]
    assert targets["onnx"]["parity"]["max_abs_logit_diff"] <= 1e-4
    assert targets["onnx"]["agreement"] == 100.0


def test_the_old_single_format_spelling_prints_the_table(default_run, tmp_path):
    proc = run_cli("export", str(default_run), "-o", str(tmp_path / "m.onnx"))
    assert proc.returncode == 0, proc.stderr
    assert [p.name for p in tmp_path.iterdir()] == ["m.onnx"]  # no work files left behind
    lines = proc.stdout.splitlines()
    assert lines[0].split()[:3] == ["target", "accuracy", "%"]
    assert any(line.startswith("onnx ") and line.rstrip().endswith("kept") for line in lines)


def test_the_help_names_every_registered_target():
    from trainlab.cli.export import FORMATS

    assert FORMATS.split(", ") == list(TARGETS)


def test_an_unknown_format_is_named_with_the_choices(default_run):
    proc = run_cli("export", str(default_run), "--format", "onnx,tflite")
    assert proc.returncode != 0 and "Traceback" not in proc.stderr
    assert "'tflite'" in proc.stderr and "onnx-int8" in proc.stderr


class _Shifted(torch.nn.Module):
    """A broken export: each answer moved to the next class."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, images):
        outputs, score = self.model(images)
        return outputs.roll(1, dims=1), score


def _build_shifted(context, path):
    _write_onnx(_Shifted(context.model).eval(), context.example, context.batch, path,
                context.metadata, context.output_names)  # fmt: skip
    return {}


@pytest.fixture
def shifted_target():
    register(Target("onnx-shifted", ".shifted.onnx", _build_shifted, onnx_float.load, "test"))
    yield
    TARGETS.pop("onnx-shifted")


@pytest.mark.usefixtures("shifted_target")
def test_a_target_that_loses_accuracy_is_refused_by_name_with_figures(
    default_run, tmp_path, capsys
):
    code = main(["export", str(default_run), "--format", "onnx-shifted,onnx", "-o", str(tmp_path)])
    captured = capsys.readouterr()
    assert code != 0
    message = captured.err
    assert "refused onnx-shifted" in message and "points lost" in message
    assert "--force" in message and "onnx:" not in message  # the good one is not named
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.onnx"]  # the bad one: gone
    row = next(line for line in captured.out.splitlines() if line.startswith("onnx-shifted"))
    assert row.rstrip().endswith("refused")
    table = json.loads((default_run / "exports.json").read_text())
    assert table["targets"]["onnx-shifted"]["drop_points"] > 50


@pytest.mark.usefixtures("shifted_target")
def test_force_keeps_a_refused_target_marked_as_forced(default_run, tmp_path):
    code = main(["export", str(default_run), "--format", "onnx-shifted", "--force", "--json",
                 "-o", str(tmp_path / "bad.onnx")])  # fmt: skip
    assert code == 0 and (tmp_path / "bad.onnx").is_file()
    entry = json.loads((default_run / "exports.json").read_text())["targets"]["onnx-shifted"]
    assert entry["status"] == "forced" and "points lost" in entry["refused_because"]


@pytest.mark.slow
def test_int8_with_no_loss_allowed_is_refused_when_it_loses_anything(default_run, tmp_path):
    out = tmp_path / "q.onnx"
    proc = run_cli("export", str(default_run), "--format", "onnx-int8", "--max-drop", "0",
                   "-o", str(out))  # fmt: skip
    row = next(line for line in proc.stdout.splitlines() if line.startswith("onnx-int8"))
    drop = float(row.split()[2])
    if drop > 0:
        assert proc.returncode != 0 and not out.exists()
        assert "onnx-int8" in proc.stderr and f"{drop:.2f} points lost" in proc.stderr
    else:
        assert proc.returncode == 0 and out.is_file(), proc.stderr


# --- "none of these" and the temperature in the graph -------------------------------------


@pytest.fixture(scope="module")
def calibrated_run(tmp_path_factory, mnist_small):
    """A small cnn with a validation split (so a temperature and a reject threshold), float32."""
    runs = tmp_path_factory.mktemp("calibrated")
    cfg = resolve_config(dict(val_split=0.1, amp="off", runs_dir=str(runs))).config
    torch.manual_seed(0)
    return Trainer(cfg).fit(build_model("cnn", mnist_small), mnist_small).run_dir


@pytest.fixture(scope="module")
def people_images(mnist, writable_root):
    """Real images a user might send: MNIST test digits and Fashion-MNIST clothes."""
    images = [x[0].numpy() for x in mnist.test_x[:300]]
    if FASHION.is_dir():
        fashion = load_dataset("fashion-mnist", str(writable_root), sources=("local", "system"))
        images += [x[0].numpy() for x in fashion.test_x[:300]]
    return images


def test_onnx_score_and_threshold_decide_as_predict_reject(calibrated_run, people_images, tmp_path):
    from trainlab.inference.export import export_model

    export_model(calibrated_run, tmp_path / "m.onnx")
    model = onnx.load(str(tmp_path / "m.onnx"))
    meta = {p.key: p.value for p in model.metadata_props}
    assert [o.name for o in model.graph.output] == ["outputs", "score"]
    predictor = Predictor(calibrated_run)
    predictor.check_reject()
    predictor.reject = True
    answers = predictor.predict(people_images, names=[str(i) for i in range(len(people_images))])
    seen = np.stack([a.preview for a in answers])[:, None].astype(np.float32) / 255
    outputs, score = onnx_session(tmp_path / "m.onnx").run(None, {"images": seen})
    threshold = float(meta["reject_threshold"])
    assert threshold == pytest.approx(predictor.reject_threshold)
    assert np.allclose(score, [a.score for a in answers], atol=1e-4)
    assert ((score > threshold) == np.array([a.rejected for a in answers])).all()
    rejected = score > threshold
    assert rejected.any() and (~rejected).any()  # both answers occur among these images
    if len(people_images) > 300:  # the clothes are mostly "none of these", the digits kept
        assert rejected[300:].mean() > rejected[:300].mean()


def test_onnx_probabilities_equal_predicts_with_the_temperature(calibrated_run, people_images,
                                                                tmp_path):  # fmt: skip
    from trainlab.inference.export import export_model

    info = export_model(calibrated_run, tmp_path / "m.onnx")
    predictor = Predictor(calibrated_run)
    assert predictor.temperature != 1.0
    assert float(info["metadata"]["temperature"]) == pytest.approx(predictor.temperature, 1e-5)
    answers = predictor.predict(people_images[:300], names=[str(i) for i in range(300)])
    seen = np.stack([a.preview for a in answers])[:, None].astype(np.float32) / 255
    outputs, _ = onnx_session(tmp_path / "m.onnx").run(None, {"images": seen})
    probabilities = torch.from_numpy(outputs).softmax(1).numpy()
    assert np.allclose(probabilities, [a.probabilities for a in answers], atol=1e-5)
