"""How far to trust a run's answers, on real MNIST: a run trained without label smoothing,
long enough to be over-confident, is calibrated by its temperature (the test split's ECE
falls), and its report shows the reliability diagram before and after, the energy score's
histogram with the "none of these" threshold, and each mistake beside its heat map."""

from __future__ import annotations

import base64
import re
import tomllib

import numpy as np
import pytest

from helpers import run_cli, run_here


@pytest.fixture(scope="module")
def confident_run(tmp_path_factory, mnist_root):
    """The default CNN, 12 epochs on 3,000 MNIST images, no label smoothing: it fits the
    training set and its softmax scores run ahead of its accuracy."""
    runs = tmp_path_factory.mktemp("confident")
    env = {"TRAINLAB_DATA": str(mnist_root)}
    proc = run_cli(
        "train", "--subset", "3000", "--test-subset", "2000", "--epochs", "12",
        "--label-smoothing", "0", "--val-split", "0.2", "--device", "cpu",
        "--runs-dir", str(runs), "--run-name", "confident", env=env,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "calibrated on the validation split: temperature" in proc.stderr
    report = run_here("report", str(runs / "confident"), env=env)
    assert report.returncode == 0, report.stderr
    return runs / "confident"


@pytest.mark.slow
def test_temperature_scaling_lowers_the_test_ece_of_an_over_confident_run(confident_run):
    record = tomllib.loads((confident_run / "config.toml").read_text())["calibration"]
    before = record["reliability_before"]
    count = np.asarray(before["count"])
    confidence = (count * np.asarray(before["confidence"])).sum() / count.sum()
    accuracy = (count * np.asarray(before["accuracy"])).sum() / count.sum()
    print(
        f"T = {record['temperature']:.3f}; test ECE {100 * record['ece_before']:.2f}% -> "
        f"{100 * record['ece_after']:.2f}%; mean confidence {100 * confidence:.2f}% against "
        f"accuracy {100 * accuracy:.2f}%"
    )
    assert confidence > accuracy  # over-confident, as the run was meant to be
    assert record["temperature"] > 1  # so the fit softens the scores
    assert record["ece_split"] == "test" and record["ece_after"] < record["ece_before"]
    assert sum(record["reliability_after"]["count"]) == 2000  # every test image, once


@pytest.mark.slow
def test_the_report_shows_calibration_rejection_and_the_heat_maps(confident_run):
    record = tomllib.loads((confident_run / "config.toml").read_text())["calibration"]
    page = (confident_run / "report.html").read_text()
    # ECE before and after, as recorded, and the reliability diagram it was drawn from
    assert (
        f"{100 * record['ece_before']:.2f}% before, {100 * record['ece_after']:.2f}% after" in page
    )
    for name, alt in (
        ("reliability.png", "reliability diagram before and after temperature scaling"),
        ("energy.png", "energy score histogram on the validation split with the threshold"),
    ):
        embedded = re.search(rf'src="data:image/png;base64,([^"]+)" alt="{alt}"', page)
        assert embedded, name
        assert base64.b64decode(embedded.group(1)) == (confident_run / name).read_bytes()
    assert f"energy threshold {record['reject_threshold']:.3f}" in page
    assert sum(record["reject_histogram"]["counts"]) == 600  # the validation split's images
    # the mistakes gallery: every mistake beside its heat map, both embedded PNGs
    shown = re.findall(r'<img class="heat" src="data:image/png;base64,([^"]+)"', page)
    plain = re.findall(r'<img class="image" src="data:image/png;base64,([^"]+)"', page)
    assert len(shown) == len(plain) > 0
    assert all(base64.b64decode(b)[:4] == b"\x89PNG" for b in shown)
    assert "heat maps by grad-cam (layer " in page
