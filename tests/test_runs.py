"""runs: run directories claimed once, config.toml written from the run description."""

import threading
import tomllib

from trainlab import runs
from trainlab.config import TrainConfig
from trainlab.data import InputTransform
from trainlab.data.kinds import CLASSIFICATION
from trainlab.engine.checkpoint import best_checkpoint
from trainlab.models import build_model


def test_a_taken_name_gets_a_suffix(tmp_path):
    first = runs.new_run_dir(tmp_path, "same", "cnn")
    second = runs.new_run_dir(tmp_path, "same", "cnn")
    assert (first.name, second.name) == ("same", "same-2")


def test_concurrent_claims_never_share_a_directory(tmp_path):
    claimed, barrier = [], threading.Barrier(8)

    def claim():
        barrier.wait()
        claimed.append(runs.new_run_dir(tmp_path, "race", "cnn"))

    threads = [threading.Thread(target=claim) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(claimed)) == 8


def test_config_toml_holds_the_description_the_checkpoint_holds(tmp_path, mnist_small):
    model = build_model("mlp", mnist_small, hidden=[8])
    cfg = TrainConfig(model="mlp", model_options={"hidden": [8]})
    transform = InputTransform([0.5], [0.5])
    description = runs.describe_run(cfg, model, mnist_small, transform)
    best = best_checkpoint(None, has_val=False, task=CLASSIFICATION)
    runs.write_config(
        tmp_path, description, counts={"train": 2000}, best=best, resumed=(1, 7), device="cpu"
    )
    written = tomllib.loads((tmp_path / "config.toml").read_text())
    assert written["config"] == {k: v for k, v in cfg.to_dict().items() if v is not None}
    assert written["model"]["name"] == "mlp" and written["model"]["options"]["hidden"] == [8]
    assert written["data"]["train"] == 2000
    assert written["run"]["resumed_from"] == {"epoch": 1, "batch": 7}
    assert written["run"]["best_checkpoint_chosen_on"].startswith("the last epoch")
    assert written["environment"]["device"] == "cpu"
    assert InputTransform.from_dict(written["data"]["transform"]).to_dict() == transform.to_dict()


def test_metrics_are_appended_and_truncated_to_a_checkpoint(tmp_path):
    for epoch in (1, 2, 3):
        runs.append_metrics(tmp_path, {"epoch": epoch, "train_loss": 1.0 / epoch})
    assert [r["epoch"] for r in runs.read_metrics(tmp_path)] == [1, 2, 3]
    runs.truncate_metrics(tmp_path, 2)
    assert [r["epoch"] for r in runs.read_metrics(tmp_path)] == [1, 2]
