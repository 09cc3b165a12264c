"""The CLI in real subprocesses, on small stratified subsets of real MNIST."""

import json
import os
import shutil
import signal
import subprocess
import sys

import pytest
import torch
from sklearn.metrics import accuracy_score, confusion_matrix, precision_recall_fscore_support

from helpers import assert_clean_error, run_cli, run_here

QUICK = ["--subset", "2000", "--test-subset", "500", "--epochs", "1", "--device", "cpu"]


@pytest.fixture
def env(mnist_root):
    return {"TRAINLAB_DATA": str(mnist_root)}


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory, mnist_root):
    runs = tmp_path_factory.mktemp("runs")
    proc = run_cli(
        "train",
        *QUICK,
        "--epochs",
        "2",
        "--runs-dir",
        str(runs),
        "--run-name",
        "r",
        "--json",
        env={"TRAINLAB_DATA": str(mnist_root)},
    )
    assert proc.returncode == 0, proc.stderr
    return runs / "r", json.loads(proc.stdout)


def test_help_explains_defaults():
    proc = run_here("train", "--help")
    assert proc.returncode == 0
    for text in (
        "--model MODEL",
        "(default: cnn)",
        "--resume RUN_DIR",
        "--val-split",
        "(default: 0.1)",
    ):
        assert text in proc.stdout
    top = run_here("--help")
    assert "trainlab train" in top.stdout and "eval" in top.stdout


def test_train_writes_a_complete_run(trained_run):
    run_dir, summary = trained_run
    assert summary["status"] == "completed" and summary["final"]["epoch"] == 2
    assert summary["final"]["test_acc"] > 0.9
    assert {p.name for p in run_dir.iterdir()} >= {
        "config.toml",
        "metrics.jsonl",
        "last.pt",
        "best.pt",
    }


@pytest.mark.slow
def test_seed_recipe_command_reports_accuracy(tmp_path, env):
    proc = run_cli(
        "train",
        "--model",
        "mlp",
        "--epochs",
        "5",
        "--optimizer",
        "adam",
        "--lr",
        "0.01",
        "--batch-size",
        "64",
        "--subset",
        "3000",
        "--test-subset",
        "1000",
        "--runs-dir",
        str(tmp_path),
        env=env,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("test accuracy ")
    assert proc.stderr.count("epoch ") >= 5


@pytest.mark.slow  # make test: tests/engine/test_metrics.py checks against scikit-learn
def test_eval_matches_scikit_learn(trained_run, env):
    run_dir, _ = trained_run
    proc = run_here("eval", str(run_dir / "best.pt"), "--json", env=env)
    assert proc.returncode == 0, proc.stderr
    ours = json.loads(proc.stdout)
    from trainlab.workflow import evaluate_checkpoint

    os.environ.update(env)
    _, (outputs, targets) = evaluate_checkpoint(run_dir / "best.pt", return_predictions=True)
    pred = outputs.argmax(1)
    assert ours["n"] == 500  # the run's own --test-subset
    whole = json.loads(
        run_here("eval", str(run_dir / "best.pt"), "--json", "--all", env=env).stdout
    )
    assert whole["n"] == 10000
    assert ours["accuracy"] == pytest.approx(accuracy_score(targets, pred))
    assert ours["confusion"] == confusion_matrix(targets, pred).tolist()
    p, r, f, s = precision_recall_fscore_support(targets, pred, zero_division=0)
    assert ours["per_class"]["precision"] == pytest.approx(p.tolist())
    assert ours["per_class"]["recall"] == pytest.approx(r.tolist())
    assert ours["per_class"]["f1"] == pytest.approx(f.tolist())
    text = run_here("eval", str(run_dir), env=env).stdout
    assert "accuracy" in text and "confusion matrix" in text and "precision" in text


def test_data_info_and_models(env):
    proc = run_here("data", "info", "mnist", env=env)
    assert proc.returncode == 0, proc.stderr
    assert "60000 train + 10000 test" in proc.stdout and "verified: yes" in proc.stdout
    models = run_here("models")
    assert models.returncode == 0 and "cnn" in models.stdout and "alexnet" in models.stdout


@pytest.mark.parametrize(
    "args, needle",
    [
        (["--model", "resnet"], "unknown model 'resnet'"),
        (["--dataset", "cifar"], "unknown dataset 'cifar'"),
        (["--optimizer", "adagrad"], "unknown optimizer 'adagrad'"),
        (["--epochs", "0"], "epochs must be at least 1"),
        (["--batch-size", "0"], "--batch-size must be at least 1"),
        (["--val-split", "1.5"], "--val-split must be in [0, 1)"),
        (["--lr", "nan"], "lr must be a finite number"),
    ],
)
def test_bad_names_and_values(tmp_path, env, args, needle):
    assert_clean_error(
        run_here("train", *QUICK, "--runs-dir", str(tmp_path), *args, env=env), needle
    )
    assert not list(tmp_path.iterdir())  # no half-made run left behind


def test_debug_shows_the_traceback(tmp_path, env):
    proc = run_cli("--debug", "train", "--model", "resnet", "--runs-dir", str(tmp_path), env=env)
    assert proc.returncode != 0 and "Traceback" in proc.stderr


def test_missing_data_root(tmp_path):
    missing = tmp_path / "no-such-dir"
    proc = run_here("train", *QUICK, "--runs-dir", str(tmp_path), "--data-dir", str(missing))
    assert_clean_error(proc, "does not exist", "trainlab data fetch mnist")
    assert not missing.exists()


def _copy_root(mnist_root, dest):
    shutil.copytree(mnist_root / "MNIST", dest / "MNIST")
    return dest / "MNIST" / "raw"


def test_corrupt_mnist_file_fails_its_md5(tmp_path, mnist_root):
    import gzip

    raw = _copy_root(mnist_root, tmp_path / "root")
    victim = next(raw.glob("t10k-images*"))
    content = (
        gzip.decompress(victim.read_bytes()) if victim.suffix == ".gz" else victim.read_bytes()
    )
    victim.unlink()
    (raw / "t10k-images-idx3-ubyte").write_bytes(content[:-5000])
    before = {p.name: p.read_bytes() for p in raw.iterdir()}
    proc = run_here(
        "train", *QUICK, "--runs-dir", str(tmp_path / "runs"), "--data-dir", str(tmp_path / "root")
    )
    assert_clean_error(
        proc,
        "t10k-images-idx3-ubyte",
        "md5",
        "2646ac647ad5339dbf082846283269ea",
        "trainlab data fetch mnist",
    )
    assert {p.name: p.read_bytes() for p in raw.iterdir()} == before


@pytest.mark.parametrize(
    "stem, damage, needle",
    [
        ("t10k-images-idx3-ubyte", lambda b: b"\x01\x02\x03\x04" + b[4:], "not an IDX file"),
        (
            "t10k-images-idx3-ubyte",
            lambda b: b"\x00\x00\x09" + b[3:],
            "items are int8, expected uint8",
        ),
        ("t10k-images-idx3-ubyte", lambda b: b[:-100], "truncated"),
        ("train-labels-idx1-ubyte", lambda b: b[:7] + b"\x3b" + b[8:-1], "60 images but"),
    ],
)
def test_corrupt_idx_files(tmp_path, stem, damage, needle):
    """Files with no known checksum (hand-made KMNIST) go through the IDX checks."""
    from helpers import write_family

    raw = write_family(tmp_path / "root", "KMNIST", n_train=60, n_test=20)
    (raw / stem).write_bytes(damage((raw / stem).read_bytes()))
    before = {p.name: p.read_bytes() for p in raw.iterdir()}
    proc = run_here(
        "train",
        "--dataset",
        "kmnist",
        "--epochs",
        "1",
        "--runs-dir",
        str(tmp_path / "runs"),
        "--data-dir",
        str(tmp_path / "root"),
    )
    assert_clean_error(proc, stem.split("-")[0], needle)
    assert {p.name: p.read_bytes() for p in raw.iterdir()} == before


def test_wrong_count_between_images_and_labels(tmp_path, mnist_root):
    """A labels file that is valid IDX but of the wrong length fails its md5 first: the message
    names the file, both hashes and the fix."""
    import numpy as np

    from trainlab.data.idx import encode_idx

    raw = _copy_root(mnist_root, tmp_path / "root")
    for p in raw.glob("t10k-labels*"):
        p.unlink()
    (raw / "t10k-labels-idx1-ubyte").write_bytes(encode_idx(np.zeros(9999, dtype=np.uint8)))
    proc = run_here("data", "info", "mnist", "--data-dir", str(tmp_path / "root"))
    assert_clean_error(proc, "t10k-labels-idx1-ubyte", "md5", "27ae3e4e09519cfbb04c329615203637")


@pytest.mark.slow  # tests/engine/test_checkpoint.py covers these in make test
def test_checkpoint_errors(tmp_path, trained_run, env):
    run_dir, _ = trained_run
    corrupt = tmp_path / "corrupt.pt"
    corrupt.write_bytes((run_dir / "last.pt").read_bytes()[:1000])
    assert_clean_error(run_here("eval", str(corrupt), env=env), "not a readable checkpoint")

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {tmp_path / 'ran'}",))

    torch.save({"format": "trainlab-checkpoint", "evil": Evil()}, tmp_path / "evil.pt")
    assert_clean_error(run_here("eval", str(tmp_path / "evil.pt"), env=env), "refused")
    assert not (tmp_path / "ran").exists()

    before = (run_dir / "last.pt").read_bytes()
    proc = run_here("train", "--resume", str(run_dir), "--model", "mlp", "--epochs", "3", env=env)
    assert_clean_error(proc, "cannot resume with --model mlp", "the run trained with model cnn")
    assert (run_dir / "last.pt").read_bytes() == before
    proc = run_here("train", "--resume", str(run_dir), "--dataset", "kmnist", env=env)
    assert_clean_error(
        proc, "cannot resume with --dataset kmnist", "the run trained with dataset mnist"
    )

    readme = tmp_path / "README.md"
    readme.write_text("# not a checkpoint\n")
    assert_clean_error(run_here("eval", str(readme), env=env), "this is not a checkpoint")


def test_version():
    from trainlab import __version__

    proc = run_cli("--version")
    assert proc.returncode == 0 and proc.stdout.strip() == f"trainlab {__version__}"


def _weights_of(path):
    from trainlab.engine.checkpoint import load_checkpoint

    return load_checkpoint(path)["state_dict"]


def test_resume_with_more_epochs_equals_an_uninterrupted_run(tmp_path, env):
    # a schedule that does not depend on --epochs, so the first epoch is the same in both runs
    base = [*QUICK, "--schedule", "constant", "--runs-dir", str(tmp_path), "--augment"]
    straight = run_here("train", *base, "--epochs", "2", "--run-name", "straight", env=env)
    assert straight.returncode == 0, straight.stderr
    short = run_here("train", *base, "--epochs", "1", "--run-name", "short", env=env)
    assert short.returncode == 0, short.stderr
    done = run_here("train", "--resume", str(tmp_path / "short"), env=env)
    assert_clean_error(done, "already finished 1 epoch(s)", "--epochs 2")
    more = run_here("train", "--resume", str(tmp_path / "short"), "--epochs", "2", env=env)
    assert more.returncode == 0, more.stderr
    assert "resume: changed --epochs 1 -> 2" in more.stderr
    a, b = (
        _weights_of(tmp_path / "straight" / "last.pt"),
        _weights_of(tmp_path / "short" / "last.pt"),
    )
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.slow
def test_ctrl_c_saves_a_checkpoint_that_resumes(tmp_path, env):
    cmd = [
        sys.executable,
        "-m",
        "trainlab",
        "train",
        "--subset",
        "6000",
        "--test-subset",
        "500",
        "--epochs",
        "2",
        "--batch-size",
        "16",
        "--log-every",
        "5",
        "--device",
        "cpu",
        "--runs-dir",
        str(tmp_path),
        "--run-name",
        "cut",
    ]
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={**os.environ, **env}
    )
    seen = []  # wait for the event (batch 20 logged), however long a busy machine takes
    for line in proc.stderr:
        seen.append(line)
        if "batch 20/" in line:
            break
    else:
        raise AssertionError("training ended before batch 20: " + "".join(seen[-20:]))
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=1800)
    assert proc.returncode == 130, err
    assert f"trainlab train --resume {tmp_path / 'cut'}" in err
    assert "Traceback" not in err
    from trainlab.engine.checkpoint import load_checkpoint

    saved = load_checkpoint(tmp_path / "cut" / "last.pt")
    assert saved["epoch"] == 0 and saved["batch"] >= 20
    # interrupted in epoch 1: the resume says so, and honours a new --epochs
    resumed = run_cli(
        "train", "--resume", str(tmp_path / "cut"), "--epochs", "3", "--json", env=env
    )
    assert resumed.returncode == 0, resumed.stderr
    result = json.loads(resumed.stdout)
    assert result["status"] == "completed" and result["final"]["epoch"] == 3
    assert f"resuming at epoch 1 batch {saved['batch'] + 1}/375" in resumed.stderr
    assert "resume: changed --epochs 2 -> 3" in resumed.stderr
    # images/s of the resumed epoch counts only the images this process trained
    rows = [json.loads(line) for line in (tmp_path / "cut" / "metrics.jsonl").open()]
    assert [r["epoch"] for r in rows] == [1, 2, 3]
    trained_here = 6000 - 16 * saved["batch"]  # the resumed epoch's images after the cut
    rate = rows[0]["images_per_s"] * rows[0]["train_seconds"]
    assert rate == pytest.approx(trained_here, rel=0.01)
