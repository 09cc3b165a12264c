import pytest
import torch

from trainlab.engine.checkpoint import load_checkpoint, load_weights, save_checkpoint
from trainlab.errors import CheckpointError
from trainlab.models import build_model


def test_roundtrip(tmp_path):
    from trainlab.config import TrainConfig

    payload = {"config": TrainConfig().to_dict(), "model": {}, "data": {}, "epoch": 3}
    save_checkpoint(tmp_path / "c.pt", {**payload, "state_dict": {"w": torch.ones(2)}})
    ckpt = load_checkpoint(tmp_path / "c.pt")
    assert ckpt["epoch"] == 3 and torch.equal(ckpt["state_dict"]["w"], torch.ones(2))
    save_checkpoint(tmp_path / "bare.pt", {"state_dict": {"w": torch.ones(2)}})
    with pytest.raises(CheckpointError, match="'config' is missing; 'model' is missing"):
        load_checkpoint(tmp_path / "bare.pt")


def test_truncated_checkpoint(tmp_path):
    save_checkpoint(tmp_path / "c.pt", {"state_dict": {"w": torch.ones(1000)}})
    content = (tmp_path / "c.pt").read_bytes()
    (tmp_path / "c.pt").write_bytes(content[: len(content) // 2])
    with pytest.raises(CheckpointError, match="not a readable checkpoint"):
        load_checkpoint(tmp_path / "c.pt")


class _Payload:
    def __reduce__(self):
        import os

        return (os.system, ("touch pwned-by-checkpoint",))


def test_pickled_code_is_refused_and_not_run(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    torch.save({"format": "trainlab-checkpoint", "state_dict": _Payload()}, tmp_path / "evil.pt")
    with pytest.raises(CheckpointError, match="refused"):
        load_checkpoint(tmp_path / "evil.pt")
    assert not (tmp_path / "pwned-by-checkpoint").exists()


def test_plain_state_dict_is_not_a_checkpoint(tmp_path):
    torch.save({"w": torch.ones(1)}, tmp_path / "plain.pt")
    with pytest.raises(CheckpointError, match="not a trainlab checkpoint"):
        load_checkpoint(tmp_path / "plain.pt")


def test_weights_of_another_model_are_named():
    cnn = build_model("cnn", input_shape=(1, 28, 28), outputs=10)
    mlp = build_model("mlp", input_shape=(1, 28, 28), outputs=10)
    with pytest.raises(CheckpointError, match="do not fit model 'mlp'.*missing"):
        load_weights(mlp, cnn.state_dict(), "cnn.pt", "mlp")
    narrow = build_model("mlp", input_shape=(1, 28, 28), outputs=10, hidden=[64, 32])
    with pytest.raises(CheckpointError, match=r"1.weight: \(64, 784\) in the file, \(512, 784\)"):
        load_weights(mlp, narrow.state_dict(), "narrow.pt", "mlp")
