"""The measurements behind `make bench`. Each returns plain JSON-able dicts; bench.py repeats,
alternates and summarises them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
TRAINLAB = [sys.executable, "-m", "trainlab"]


def _given() -> dict[str, str]:
    """The environment as the user gave it: peers run as they would without trainlab (whose
    import makes idle OpenMP threads sleep in its own process and its children)."""
    from trainlab.engine.threads import environment_as_given

    return environment_as_given()


def run_with_rss(cmd: list[str], env: dict[str, str]) -> tuple[float, str, int]:
    """Like launch, but measures the child's own peak RSS through os.wait4."""
    started = time.time()
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env={**_given(), **env}
    )
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    if status != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed with status {status}")
    return started, out, usage.ru_maxrss


def trainlab_time_to_99(data_root: str, extra: list[str] | None = None) -> dict:
    """Default `trainlab train`: seconds from process start to the first epoch at >= 99.0%."""
    with tempfile.TemporaryDirectory() as runs:
        started, out, rss = run_with_rss(
            [
                *TRAINLAB,
                "train",
                "--json",
                "--quiet",
                "--runs-dir",
                runs,
                "--run-name",
                "r",
                *(extra or []),
            ],
            {"TRAINLAB_DATA": data_root},
        )
        rows = [
            json.loads(line)
            for line in (Path(runs) / "r" / "metrics.jsonl").read_text().splitlines()
        ]
    hit = next((r for r in rows if r["test_acc"] >= 0.99), None)
    return {
        "time_to_99": round(hit["time"] - started, 2) if hit else None,
        "epoch_of_99": hit["epoch"] if hit else None,
        "final_acc": rows[-1]["test_acc"],
        "epochs": len(rows),
        "peak_rss_mib": round(rss / 1024, 1),
        "train_seconds_per_epoch": round(sum(r["train_seconds"] for r in rows) / len(rows), 2),
    }


def peer_lines(name: str, data_root: str, *args: int) -> tuple[float, list[dict]]:
    with tempfile.TemporaryDirectory() as cwd:
        started = time.time()
        proc = subprocess.run(
            [
                sys.executable,
                str(HERE / "peers.py"),
                name,
                str(Path(cwd) / "data"),
                *map(str, args),
            ],
            capture_output=True,
            text=True,
            check=False,
            env={**_given(), "TRAINLAB_DATA": data_root},
            cwd=cwd,
        )
    if proc.returncode != 0:
        raise RuntimeError(f"peer {name} failed:\n{proc.stderr[-3000:]}")
    return started, [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]


def example_time_to_99(data_root: str, max_epochs: int = 14) -> dict:
    started, rows = peer_lines("pytorch-example", data_root, max_epochs)
    hit = next((r for r in rows if r["test_acc"] >= 0.99), None)
    return {
        "time_to_99": round(hit["time"] - started, 2) if hit else None,
        "epoch_of_99": hit["epoch"] if hit else None,
        "final_acc": rows[-1]["test_acc"],
        "images_per_s": round(sum(r["images_per_s"] for r in rows) / len(rows), 1),
    }


def trainlab_seed_mlp_epoch(data_root: str) -> dict:
    with tempfile.TemporaryDirectory() as runs:
        _, out, _ = run_with_rss(
            [
                *TRAINLAB,
                "train",
                "--recipe",
                "seed-mlp",
                "--epochs",
                "1",
                "--json",
                "--quiet",
                "--runs-dir",
                runs,
            ],
            {"TRAINLAB_DATA": data_root},
        )
    final = json.loads(out)["final"]
    return {"epoch_seconds": final["train_seconds"], "test_acc": final["test_acc"]}


def peer_seed_mlp_epoch(data_root: str) -> dict:
    _, rows = peer_lines("seed-mlp", data_root, 1)
    return {"epoch_seconds": rows[0]["train_seconds"], "test_acc": rows[0]["test_acc"]}


def peer_alexnet(data_root: str) -> dict:
    _, rows = peer_lines("seed-alexnet", data_root, 3)
    return {"images_per_s": rows[0]["images_per_s"]}


# --- in-process measurements -----------------------------------------------------------------
def _mnist(data_root: str):
    from trainlab.data import load_dataset

    return load_dataset("mnist", data_root, sources=("local",))


def engine_overhead(data_root: str, epochs: int = 2, batch_size: int = 512) -> dict:
    """Seconds per epoch of the same MLP on the same in-memory batches: bare loop vs Trainer."""
    import torch
    import torch.nn.functional as F

    from trainlab import Trainer, build_model
    from trainlab.config import TrainConfig
    from trainlab.data import Batches, InputTransform

    data = _mnist(data_root)
    cfg = TrainConfig(
        model="mlp",
        epochs=epochs,
        batch_size=batch_size,
        optimizer="sgd",
        lr=0.05,
        momentum=0.9,
        nesterov=False,
        weight_decay=0.0,
        schedule="constant",
        amp="off",
        device="cpu",
    )
    out = {}
    for order in ("bare", "trainer"):
        torch.manual_seed(0)
        model = build_model("mlp", data)
        if order == "bare":
            transform = InputTransform(data.mean, data.std)
            batches = Batches(
                data.train_x, data.train_y, batch_size, shuffle=True, seed=0, transform=transform
            )
            optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
            seconds = []
            for epoch in range(epochs):
                began = time.perf_counter()
                model.train()
                for x, y in batches.epoch(epoch):
                    loss = F.cross_entropy(model(x), y)
                    optimizer.zero_grad(set_to_none=True)
                    loss.backward()
                    optimizer.step()
                seconds.append(time.perf_counter() - began)
        else:
            with tempfile.TemporaryDirectory() as runs:
                result = Trainer(cfg.replace(runs_dir=runs)).fit(model, data)
            seconds = [r["train_seconds"] for r in result.history]
        out[order] = round(sum(seconds) / len(seconds), 3)
    out["overhead"] = round(out["trainer"] / out["bare"] - 1, 4)
    return out


def lightning_epoch(data_root: str, epochs: int = 2, batch_size: int = 512) -> dict | None:
    """The same MLP and in-memory batches under Lightning's Trainer, if Lightning is installed."""
    try:
        import lightning as L
    except ImportError:
        return None
    import torch
    import torch.nn.functional as F

    from trainlab import build_model
    from trainlab.data import Batches, InputTransform

    data = _mnist(data_root)

    class Module(L.LightningModule):
        def __init__(self):
            super().__init__()
            self.net = build_model("mlp", data)

        def training_step(self, batch, _):
            x, y = batch
            return F.cross_entropy(self.net(x), y)

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.05, momentum=0.9)

    class Timing(L.Callback):
        def __init__(self):
            self.seconds = []

        def on_train_epoch_start(self, *_):
            self.began = time.perf_counter()

        def on_train_epoch_end(self, *_):
            self.seconds.append(time.perf_counter() - self.began)

    torch.manual_seed(0)
    batches = Batches(
        data.train_x,
        data.train_y,
        batch_size,
        shuffle=True,
        seed=0,
        transform=InputTransform(data.mean, data.std),
    )
    timing = Timing()
    with tempfile.TemporaryDirectory() as root:
        trainer = L.Trainer(
            max_epochs=epochs,
            accelerator="cpu",
            logger=False,
            enable_checkpointing=False,
            enable_progress_bar=False,
            enable_model_summary=False,
            callbacks=[timing],
            default_root_dir=root,
        )
        trainer.fit(Module(), train_dataloaders=batches)
    return {"lightning": round(sum(timing.seconds) / len(timing.seconds), 3)}


def matmul_peak(size: int = 2048, repeats: int = 10) -> float:
    """float32 matmul GFLOP/s on this machine's threads (best of ``repeats``)."""
    import torch

    a, b = torch.randn(size, size), torch.randn(size, size)
    best = 0.0
    for _ in range(repeats + 2):
        began = time.perf_counter()
        a @ b
        best = max(best, 2 * size**3 / (time.perf_counter() - began) / 1e9)
    return round(best, 1)


MODELS = {"mlp": 512, "lenet": 256, "cnn": 128, "alexnet": 512}  # each recipe's batch


def throughput(data_root: str, name: str, images: int = 8192) -> dict:
    """Training and evaluation images/s with trainlab's defaults (amp, channels-last)."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from trainlab import build_model
    from trainlab.config import TrainConfig
    from trainlab.data import Batches
    from trainlab.engine.device import autocast_dtype
    from trainlab.engine.loop import EpochState, evaluate, loss_function, train_one_epoch
    from trainlab.engine.metrics import Counts
    from trainlab.engine.optim import build_optimizer
    from trainlab.engine.setup import has_convs, input_transform

    data = _mnist(data_root).subset(
        images if name != "alexnet" else 1536, 2048 if name != "alexnet" else 512
    )
    batch = MODELS[name]
    torch.manual_seed(0)
    model = build_model(name, data)
    cfg = TrainConfig(model=name, batch_size=batch)
    conv = has_convs(model)
    if conv:
        model = model.to(memory_format=torch.channels_last)
    amp = autocast_dtype("auto" if conv else "off", torch.device("cpu"))
    transform = input_transform(model, data, cfg)
    train = Batches(data.train_x, data.train_y, batch, shuffle=True, transform=transform)
    test = Batches(data.test_x, data.test_y, 1000, transform=transform)
    optimizer = build_optimizer(model, cfg)
    loss = loss_function("cross-entropy")
    x0 = transform(data.test_x[:1])
    with FlopCounterMode(display=False) as counter:
        model(x0)
    forward_flops = counter.get_total_flops()
    state = EpochState(0, 0, Counts(10, torch.device("cpu")))
    # warm-up: one pass over a few batches
    warm = Batches(data.train_x[: batch * 2], data.train_y[: batch * 2], batch, transform=transform)
    train_one_epoch(
        model,
        warm,
        optimizer,
        loss,
        EpochState(0, 0, Counts(10, torch.device("cpu"))),
        amp_dtype=amp,
    )
    began = time.perf_counter()
    train_one_epoch(model, train, optimizer, loss, state, amp_dtype=amp)
    train_ips = train.num_samples / (time.perf_counter() - began)
    began = time.perf_counter()
    evaluate(model, test, loss, 10, amp)
    eval_ips = test.num_samples / (time.perf_counter() - began)
    return {
        "train_images_per_s": round(train_ips, 1),
        "eval_images_per_s": round(eval_ips, 1),
        "forward_mflop_per_image": round(forward_flops / 1e6, 2),
        "train_gflops": round(3 * forward_flops * train_ips / 1e9, 1),
        "eval_gflops": round(forward_flops * eval_ips / 1e9, 1),
        "precision": "bf16" if amp else "fp32",
        "batch_size": batch,
    }


def trainlab_recipe(data_root: str, recipe: str, extra: list[str]) -> dict:
    with tempfile.TemporaryDirectory() as runs:
        started = time.perf_counter()
        _, out, _ = run_with_rss(
            [
                *TRAINLAB,
                "train",
                "--recipe",
                recipe,
                *extra,
                "--json",
                "--quiet",
                "--runs-dir",
                runs,
            ],
            {"TRAINLAB_DATA": data_root},
        )
    final = json.loads(out)["final"]
    return {
        "test_acc": final["test_acc"],
        "seconds": round(time.perf_counter() - started, 1),
        "epochs": final["epoch"],
    }


# --- predict and export ---------------------------------------------------------------------


def predict_fixture(root: str, tmp: Path) -> tuple[Path, Path]:
    """A quickly trained default cnn and 1,000 MNIST test digits as dark-on-light 112×112 PNGs."""
    from PIL import Image

    from trainlab.data import load_dataset

    env = {**_given(), "TRAINLAB_DATA": root}
    subprocess.run(
        [sys.executable, "-m", "trainlab", "train", "--subset", "10000", "--epochs", "1"]
        + ["--runs-dir", str(tmp), "--run-name", "model", "--quiet"],
        check=True,
        env=env,
        capture_output=True,
    )
    folder = tmp / "pngs"
    folder.mkdir()
    test_x = load_dataset("mnist", root, sources=("local",)).test_x[:1000, 0].numpy()
    for i, digit in enumerate(test_x):
        image = Image.fromarray(255 - digit).resize((112, 112), Image.BILINEAR)
        image.save(folder / f"{i:04d}.png")
    return tmp / "model", folder


def predict_folder(run_dir: Path, folder: Path) -> dict:
    """In-process throughput of Predictor.predict over the folder, and the whole command."""
    from trainlab.inference import Predictor

    files = sorted(str(p) for p in folder.glob("*.png"))
    predictor = Predictor(run_dir, device="cpu")
    began = time.perf_counter()
    results = predictor.predict(files)
    seconds = time.perf_counter() - began
    assert all(r.ok for r in results)
    began = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "trainlab", "predict", str(run_dir), str(folder), "--json"],
        check=True,
        capture_output=True,
    )
    return {"images_per_s": len(files) / seconds, "command_seconds": time.perf_counter() - began}


def inference_latency(run_dir: Path, onnx_path: Path, repeats: int) -> dict:
    """Milliseconds per call, ONNX Runtime and PyTorch alternating, at batch 1 and 256."""
    import statistics

    import torch

    from trainlab.inference.export import _load, export_model, onnx_session

    export_model(run_dir, onnx_path, verify=False)
    _, model = _load(run_dir)
    session = onnx_session(onnx_path)
    out: dict = {"onnxruntime_ms": {}, "pytorch_ms": {}}
    for batch, calls in ((1, 300), (256, 20)):
        x = torch.rand(batch, 1, 28, 28)
        feed = {"images": x.numpy()}
        ort, pt = [], []
        for _ in range(repeats):
            for _ in range(3):  # warm-up
                session.run(None, feed)
                with torch.inference_mode():
                    model(x)
            began = time.perf_counter()
            for _ in range(calls):
                session.run(None, feed)
            ort.append(1000 * (time.perf_counter() - began) / calls)
            began = time.perf_counter()
            with torch.inference_mode():
                for _ in range(calls):
                    model(x)
            pt.append(1000 * (time.perf_counter() - began) / calls)
        out["onnxruntime_ms"][str(batch)] = {"median": statistics.median(ort), "runs": ort}
        out["pytorch_ms"][str(batch)] = {"median": statistics.median(pt), "runs": pt}
    return out


def serve_load(run_dir: Path, folder: Path, repeats: int, requests: int = 400) -> dict:
    """A real server subprocess; for 1, 4 and 16 client threads, ``requests`` PNG predictions
    each round (the best of ``repeats`` rounds by throughput, with its latencies)."""
    import signal
    import socket
    import threading

    import httpx

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    proc = subprocess.Popen(
        [sys.executable, "-m", "trainlab", "serve", str(run_dir), "--port", str(port)],
        stderr=subprocess.DEVNULL,
    )
    try:
        for _ in range(300):
            try:
                httpx.get(url + "/api/health", timeout=1)
                break
            except httpx.HTTPError:
                time.sleep(0.2)
        blobs = [p.read_bytes() for p in sorted(folder.glob("*.png"))[:100]]
        out: dict = {"requests": requests, "clients": {}}
        for clients in (1, 4, 16):
            best = None
            for _ in range(repeats):
                latencies, statuses, lock = [], [], threading.Lock()

                def client(k, n=clients, lock=lock, latencies=latencies, statuses=statuses):
                    with httpx.Client(timeout=60) as http:
                        for i in range(k, requests, n):
                            began = time.perf_counter()
                            reply = http.post(
                                url + "/api/predict",
                                content=blobs[i % len(blobs)],
                                headers={"Content-Type": "image/png"},
                            )
                            with lock:
                                latencies.append(1000 * (time.perf_counter() - began))
                                statuses.append(reply.status_code)

                began = time.perf_counter()
                threads = [threading.Thread(target=client, args=(k,)) for k in range(clients)]
                for t in threads:
                    t.start()
                for t in threads:
                    t.join()
                seconds = time.perf_counter() - began
                latencies.sort()
                row = {
                    "requests_per_s": requests / seconds,
                    "p50_ms": latencies[len(latencies) // 2],
                    "p99_ms": latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))],
                    "status_503": statuses.count(503),
                }
                if best is None or row["requests_per_s"] > best["requests_per_s"]:
                    best = row
            out["clients"][str(clients)] = best
        return out
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=30)


def distributed_epoch(data_root: str, processes: int, threads: int, subset: int = 30000) -> dict:
    """Training images/s of the default CNN for one epoch of ``subset`` images: one process
    with ``threads`` threads, or ``torchrun`` with ``processes`` processes of ``threads`` each
    (on CUDA: one GPU per process). The global batch is the default 128 either way."""
    import torch

    env = {**_given(), "TRAINLAB_DATA": data_root, "OMP_NUM_THREADS": str(threads)}
    args = ["train", "--epochs", "1", "--subset", str(subset), "--test-subset", "2000"]
    with tempfile.TemporaryDirectory() as runs:
        args += ["--runs-dir", runs, "--run-name", "r", "--quiet"]
        if processes == 1:
            command = [*TRAINLAB, *args]
        else:
            command = [sys.executable, "-m", "torch.distributed.run", "--standalone"]
            command += ["--nproc-per-node", str(processes), "-m", "trainlab", *args]
        subprocess.run(command, env=env, check=True, capture_output=True, text=True)
        row = json.loads((Path(runs) / "r" / "metrics.jsonl").read_text().splitlines()[-1])
    return {
        "images_per_s": row["images_per_s"],
        "train_seconds": row["train_seconds"],
        "test_acc": row["test_acc"],
        "device": "cuda" if torch.cuda.is_available() else "cpu",
    }
