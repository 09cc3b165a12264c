"""predict and eval give the same answers for a run: both score in the precision the run
recorded, through the same resize policy and test-time flips.

A newcomer saw predict score 0.874 and eval 0.875 on a folder run where `--amp auto` meant bf16:
eval scored in bf16 while predict computed in float32. The bound checked here: in one precision
the labels are identical except where eval's own top two are within 1e-2 of a tie (bf16 kernels
may sum a batch in another order on another CPU), and the probabilities agree within 1e-3.
"""

from __future__ import annotations

import torch

from trainlab.inference import Predictor
from trainlab.resolve import resolve_config
from trainlab.workflow import evaluate_checkpoint, train


def _folder_files(folder):
    """The test split's files in the order the dataset reads them (classes, then names)."""
    return sorted(
        (str(f) for f in (folder / "test").glob("*/*") if f.is_file()),
        key=lambda p: (p.split("/")[-2], p.split("/")[-1]),
    )


def test_predict_agrees_with_eval_in_the_recorded_precision(tmp_path, mnist):
    from PIL import Image

    folder = tmp_path / "photos"
    for split, (x, y) in {"train": (mnist.train_x[:600], mnist.train_y[:600]),
                          "test": (mnist.test_x[:150], mnist.test_y[:150])}.items():  # fmt: skip
        for i, (image, label) in enumerate(zip(x, y, strict=True)):
            where = folder / split / f"class {int(label)}"
            where.mkdir(parents=True, exist_ok=True)
            Image.fromarray(image[0].numpy()).convert("RGB").save(where / f"{i:04d}.png")
    settings = {"dataset": str(folder), "epochs": 1, "amp": "bf16", "device": "cpu"}
    cfg = resolve_config({**settings, "runs_dir": str(tmp_path / "runs")}).config
    run = train(cfg)
    report, (outputs, _) = evaluate_checkpoint(run.best_path, device="cpu", return_predictions=True)
    expected = outputs.softmax(1)
    top2 = expected.topk(2, dim=1).values
    near_tie = (top2[:, 0] - top2[:, 1]) < 1e-2
    files = _folder_files(folder)
    assert len(files) == len(expected) == 150
    for batch_size in (1, 7, 256):
        answers = Predictor(run.run_dir, device="cpu").predict(files, batch_size=batch_size)
        labels = torch.tensor([a.index for a in answers])
        probabilities = torch.tensor([a.probabilities for a in answers])
        assert bool(((labels == expected.argmax(1)) | near_tie).all()), batch_size
        assert float((probabilities - expected).abs().max()) <= 1e-3, batch_size
    # what made them disagree: the same run scored in float32 is another computation
    float32 = Predictor(run.run_dir, device="cpu", amp="off").predict(files)
    drift = torch.tensor([a.probabilities for a in float32]) - expected
    assert float(drift.abs().max()) > 1e-3
    assert report.n == 150
