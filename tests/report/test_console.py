"""ConsoleLogger: plain lines off a terminal; what a resume changed, said before training."""

import io

from trainlab import Trainer, build_model
from trainlab.report.console import ConsoleLogger


def _fit(tmp_path, data, logger, **kw):
    model = build_model("mlp", data, hidden=[16])
    return Trainer(callbacks=[logger], runs_dir=str(tmp_path), device="cpu", **kw).fit(model, data)


def test_plain_lines_every_n_batches_and_per_epoch(tmp_path, mnist_small):
    stream = io.StringIO()
    _fit(tmp_path, mnist_small, ConsoleLogger(10, stream=stream), epochs=1, batch_size=100)
    text = stream.getvalue()
    assert "batch 10/20" in text and "batch 20/20" in text and "epoch 1/1  train loss" in text
    assert "\r" not in text and "\x1b" not in text


def test_quiet_prints_nothing(tmp_path, mnist_small):
    stream = io.StringIO()
    _fit(tmp_path, mnist_small, ConsoleLogger(10, stream=stream, quiet=True), epochs=1)
    assert stream.getvalue() == ""


def test_a_resume_says_where_it_starts_and_what_changed(tmp_path, mnist_small):
    first = _fit(tmp_path, mnist_small, ConsoleLogger(stream=io.StringIO()), epochs=1)
    stream = io.StringIO()
    model = build_model("mlp", mnist_small, hidden=[16])
    Trainer(callbacks=[ConsoleLogger(stream=stream)], epochs=2, log_every=7).fit(
        model, mnist_small, resume=first.run_dir
    )
    text = stream.getvalue()
    assert "resume: changed --epochs 1 -> 2, --log-every 0 -> 7" in text
    assert "resuming at epoch 2" in text
