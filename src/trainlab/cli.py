"""Command line: ``trainlab train | eval | predict | export | serve | report | compare | data |
models | recipes`` (also ``python -m trainlab``).

Thin by design: it parses, builds a ``TrainConfig``, and calls the functions the Python API
exposes (``trainlab.workflow``). The ``train`` flags are generated from ``TrainConfig``'s fields,
so the two never drift apart.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
from typing import Any

from trainlab.config import TrainConfig, base_type, field_types, flag_name
from trainlab.errors import ConfigError, TrainlabError

EXAMPLES = """examples:
  trainlab train                                   # default CNN on MNIST, >= 99% in 1 epoch
  trainlab train --model mlp --epochs 5 --optimizer adam --lr 0.01 --batch-size 64
  trainlab train --recipe seed-mlp --epochs 2      # a seed's recipe, a field overridden
  trainlab train --resume runs/<id> --epochs 4     # continue a run (or an interrupted one)
  trainlab eval runs/<id>/best.pt                  # accuracy, per-class P/R/F1, confusion matrix
  trainlab data fetch mnist                        # into $TRAINLAB_DATA or the user cache
  trainlab models                                  # registry, parameters, expected input
"""


def _shown(value: Any) -> str:
    if value is None:
        return "none"
    if isinstance(value, list | tuple):
        return " ".join(map(str, value)) or "none"
    return str(value)


def add_config_flags(parser: argparse.ArgumentParser) -> None:
    """One flag per TrainConfig field, and one per option of the built-in models and datasets
    (``--hidden``, ``--samples``), defaults suppressed so only given flags are seen."""
    types = field_types()
    groups: dict[str, argparse._ArgumentGroup] = {}
    titles = {"data": "data", "model": "model", "optim": "optimisation", "run": "run"}
    for f in dataclasses.fields(TrainConfig):
        meta = f.metadata
        group = groups.setdefault(meta["group"], parser.add_argument_group(titles[meta["group"]]))
        if meta.get("cli") is False:
            continue
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
        kind, is_list, _ = base_type(types[f.name])
        help_text = meta["help"]
        if f.name == "dataset":
            from trainlab.data import dataset_names

            help_text += f": {', '.join(dataset_names())}"
        shown = meta.get("shown", _shown(default))
        _add_flag(group, f.name, kind, is_list, help_text, shown, meta.get("metavar"))
    _add_option_flags(groups["model"], groups["data"])


def _add_flag(group, name, kind, is_list, help_text, shown, metavar=None) -> None:
    kwargs: dict[str, Any] = {
        "default": argparse.SUPPRESS,
        "dest": name,
        # argparse %-formats help strings: escape the texts' own percent signs.
        "help": f"{help_text} (default: {shown})".replace("%", "%%"),
    }
    if kind is bool:
        kwargs["action"] = argparse.BooleanOptionalAction
    elif name == "lr":  # a number, or auto: the learning-rate range test chooses it
        kwargs["type"] = _lr_value
        kwargs["metavar"] = "LR|auto"
    else:
        kwargs["type"] = kind
        kwargs["metavar"] = metavar or name.upper()
        if is_list:
            kwargs["nargs"] = "+"
    group.add_argument(flag_name(name), **kwargs)


def _lr_value(text: str) -> float | str:
    if text == "auto":
        return text
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"invalid value {text!r}: a number (e.g. 0.1) or auto (trainlab lr-find chooses it)"
        ) from None


def _add_option_flags(model_group, data_group) -> None:
    """The built-ins' options as flags of their own, generated from the registries' specs."""
    from trainlab.models.shorthand import shorthand_options

    for name, (field_name, specs) in shorthand_options().items():
        option = next(iter(specs.values()))
        group = model_group if field_name == "model_options" else data_group
        defaults = {owner: _shown(o.default) for owner, o in specs.items()}
        shown = next(iter(defaults.values()))
        text = option.meta.help or name
        if len(specs) > 1:  # one flag for several models' option of that name
            shown = ", ".join(f"{owner} {value}" for owner, value in defaults.items())
            text = f"{', '.join(specs)}: {text.split(': ', 1)[-1]}"
        _add_flag(group, name, option.kind, option.is_list, text, shown, option.meta.metavar)
    model_group.add_argument(
        "--model-arg",
        action="append",
        metavar="NAME=VALUE",
        help="an option of the model, its value read as TOML (--model-arg width=12, "
        "--model-arg widths=[8,16]); repeat for more. Checked against the model's signature",
    )
    data_group.add_argument(
        "--data-arg",
        action="append",
        metavar="NAME=VALUE",
        help="an option of the dataset, as --model-arg (see `trainlab data info NAME`)",
    )


def given_settings(args: argparse.Namespace) -> dict[str, Any]:
    """The settings a user typed: config fields, the built-ins' option flags and the
    NAME=VALUE options, as ``plan_run`` takes them."""
    from trainlab.models.shorthand import shorthand_options
    from trainlab.options import parse_assignment

    given = {
        f.name: getattr(args, f.name)
        for f in dataclasses.fields(TrainConfig)
        if hasattr(args, f.name)
    }
    given.update({k: getattr(args, k) for k in shorthand_options() if hasattr(args, k)})
    for flag, field_name in (("model_arg", "model_options"), ("data_arg", "data_options")):
        pairs = [parse_assignment(text, flag_name(flag)) for text in getattr(args, flag) or []]
        if pairs:
            given[field_name] = dict(pairs)
    if "model" in given:
        from trainlab.models.usercode import normalise

        given["model"] = normalise(given["model"])
    return given


def _version() -> str:
    from trainlab import __version__

    return __version__


def _trust_flag(parser: argparse.ArgumentParser, what: str = "") -> None:
    parser.add_argument(
        "--trust-code",
        action="store_true",
        help=(what or "import the model's code if it is your own (FILE.py:Class)")
        + "; without it such a model is refused and nothing is imported",
    )


def _add_train(sub) -> None:
    """`trainlab train`: the run flags generated from TrainConfig and the registries."""
    train = sub.add_parser(
        "train",
        help="train a model; writes runs/<id>/",
        description="Train a model and write runs/<id>/ (config.toml, "
        "metrics.jsonl, last.pt, best.pt). Ctrl-C saves a resumable checkpoint.",
    )
    train.add_argument(
        "--resume",
        metavar="RUN_DIR",
        help="continue the run in RUN_DIR from its "
        "last.pt (flags given here change the saved config, e.g. --epochs)",
    )
    train.add_argument(
        "--config",
        metavar="FILE.toml",
        help="start from the settings in this file (a run's own config.toml works); flags "
        "given here override it",
    )
    _trust_flag(train, "on --resume, import the run's model code if it is your own file")
    train.add_argument(
        "--json", action="store_true", help="print the final result as JSON on stdout"
    )
    train.add_argument("--quiet", action="store_true", help="print only the final summary")
    add_config_flags(train)


def _add_eval(sub) -> None:
    """`trainlab eval`."""
    ev = sub.add_parser("eval", help="evaluate a checkpoint: accuracy, per-class P/R/F1, confusion")
    ev.add_argument("checkpoint", help="a .pt file or a run directory (uses its best.pt)")
    ev.add_argument(
        "--split",
        choices=["test", "val", "train"],
        default="test",
        help="which split to evaluate; val is the run's --val-split (default: test)",
    )
    _trust_flag(ev)
    ev.add_argument("--data-dir", help="data root, if not the one the run used")
    ev.add_argument("--device", default="auto", help="device (default: auto)")
    ev.add_argument(
        "--batch-size",
        type=int,
        default=None,
        help="evaluation batch size (default: the run's --eval-batch-size)",
    )
    ev.add_argument("--json", action="store_true", help="print the report as JSON")
    ev.add_argument(
        "--all",
        action="store_true",
        help="use the whole split, not the run's --test-subset (if it had one)",
    )
    ev.add_argument(
        "--no-save",
        action="store_true",
        help="do not write predictions.npz next to "
        "the checkpoint (written by default, for `trainlab report`)",
    )


def _add_data(sub) -> None:
    """`trainlab data fetch|info`."""
    from trainlab.data import dataset_names

    names = ", ".join(dataset_names())
    data = sub.add_parser("data", help="fetch datasets or show what is there")
    data_sub = data.add_subparsers(dest="data_command", metavar="ACTION", required=True)
    for action, text in (
        ("fetch", "download and verify a dataset into the data root"),
        ("info", "counts, classes, mean/std, files and whether they are verified"),
    ):
        p = data_sub.add_parser(action, help=text, description=text)
        p.add_argument("name", help=f"a dataset: {names}")
        p.add_argument("--data-dir", help="data root (else $TRAINLAB_DATA, else the user cache)")
        p.add_argument(
            "--data-arg",
            action="append",
            metavar="NAME=VALUE",
            help="an option of the dataset (e.g. samples=200 for linear)",
        )
        if action == "fetch":
            p.add_argument(
                "--source",
                default="local,system,mirrors,index",
                help="sources to try, in order (default: local,system,mirrors,index; system: "
                "the folder an OS package installs, e.g. Debian's dataset-fashion-mnist)",
            )
        if action == "info":
            p.add_argument(
                "--verify",
                action="store_true",
                help="hash every file again (normally a file whose size, mtime and ctime are "
                "unchanged since its md5 was checked is not hashed again)",
            )
        p.add_argument("--json", action="store_true", help="print as JSON")


def _add_predict(sub) -> None:
    """`trainlab predict`."""
    pred = sub.add_parser(
        "predict",
        help="predict the class of your own images (files, folders, globs)",
        description="Predict with a trained model. For the MNIST family each image is made "
        "to look like an MNIST digit first (polarity from the border, ink cropped, fitted into "
        "20×20, centred by its centre of mass in 28×28); --preview saves what the model saw. "
        "Exit status 1 if any input could not be read.",
    )
    pred.add_argument(
        "checkpoint",
        help="a .pt file, a run directory (uses its best.pt), or a pretrained model by name "
        "(efficientnet-lite0: ImageNet's classes)",
    )
    pred.add_argument("inputs", nargs="+", metavar="INPUT", help="image files, folders or globs")
    pred.add_argument("--json", action="store_true", help="print the results as JSON")
    _trust_flag(pred)
    pred.add_argument(
        "--preview", metavar="DIR", help="save the image the model saw for each input"
    )
    pred.add_argument("--top-k", type=int, default=3, help="classes listed per image (default: 3)")
    pred.add_argument(
        "--min-confidence",
        type=float,
        default=0.5,
        help="flag predictions whose probability is below this (default: 0.5)",
    )
    pred.add_argument(
        "--max-pixels",
        type=int,
        default=16_000_000,
        help="refuse larger images before decoding them (default: 16000000)",
    )
    pred.add_argument("--batch-size", type=int, default=256, help="images per model call")
    pred.add_argument("--device", default="auto", help="device (default: auto)")


def _add_export(sub) -> None:
    """`trainlab export`."""
    exp = sub.add_parser(
        "export",
        help="export a model to ONNX (default) or a torch.export program",
        description="Write the model, its normalisation (and resize) included, as one file "
        "that takes float32 images in [0, 1], N×C×H×W with a dynamic batch size, then check "
        "it against the checkpoint on real test images.",
    )
    exp.add_argument("checkpoint", help="a .pt file or a run directory (uses its best.pt)")
    exp.add_argument("--format", choices=["onnx", "pt2"], default="onnx", help="(default: onnx)")
    exp.add_argument(
        "--output", "-o", help="the file to write (default: beside the checkpoint, .onnx/.pt2)"
    )
    exp.add_argument(
        "--no-verify", action="store_true", help="skip the parity check with ONNX Runtime"
    )
    exp.add_argument("--data-dir", help="data root for the parity check's test images")
    exp.add_argument("--json", action="store_true", help="print the result as JSON")
    _trust_flag(exp)


def _add_serve(sub) -> None:
    """`trainlab serve`."""
    srv = sub.add_parser(
        "serve",
        help="the draw-a-digit page and a JSON API for a model",
        description="Serve a page to draw or upload a digit and a JSON API (/api/predict, "
        "/api/predict/batch, /api/model, /api/health; schema at /openapi.json). Needs the "
        "[serve] extra. Ctrl-C stops it.",
    )
    srv.add_argument("checkpoint", help="a .pt file or a run directory (uses its best.pt)")
    srv.add_argument("--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1)")
    srv.add_argument("--port", type=int, default=8000, help="port (default: 8000)")
    srv.add_argument(
        "--quiet", action="store_true", help="no line per request (method, path, status, ms)"
    )
    _trust_flag(srv)
    srv.add_argument(
        "--api-key",
        default=None,
        help="require 'Authorization: Bearer KEY' on every API call (default: $TRAINLAB_API_KEY)",
    )
    srv.add_argument("--device", default="auto", help="device (default: auto)")
    srv.add_argument(
        "--max-body-mb", type=float, default=2.0, help="largest request body in MB (default: 2)"
    )
    srv.add_argument(
        "--max-pixels", type=int, default=16_000_000, help="largest image (default: 16000000)"
    )
    srv.add_argument(
        "--max-batch", type=int, default=16, help="images per batch call (default: 16)"
    )
    srv.add_argument(
        "--max-in-flight",
        type=int,
        default=4,
        help="predictions at once; more wait --queue-wait-ms, then get 503 (default: 4)",
    )
    srv.add_argument(
        "--queue-wait-ms",
        type=int,
        default=500,
        help="how long a request may wait for a place before 503 (default: 500)",
    )


def _add_runs(sub) -> None:
    """`trainlab models|recipes|report|compare`."""
    sub.add_parser("models", help="list the models with parameter counts and expected input")
    sub.add_parser("recipes", help="list the seeds' recipes (trainlab train --recipe NAME)")

    rep = sub.add_parser(
        "report",
        help="curves, confusion matrix, mistakes and report.html for a run",
        description="Write curves.png, confusion.png, mistakes.png and a "
        "self-contained report.html into RUN_DIR, from its metrics.jsonl and "
        "predictions.npz (the model is not run again).",
    )
    rep.add_argument("run_dir", help="a run directory made by `trainlab train`")
    rep.add_argument(
        "--top-k", type=int, default=16, help="how many confident mistakes to show (default: 16)"
    )
    rep.add_argument("--open", action="store_true", help="open report.html in the default browser")

    cmp = sub.add_parser("compare", help="compare runs: differing settings, final metrics, curves")
    cmp.add_argument("run_dirs", nargs="+", metavar="RUN_DIR", help="two or more run directories")
    cmp.add_argument(
        "--output",
        default=None,
        help="where to write the overlaid curves (default: compare.png in the folder that "
        "holds the runs)",
    )
    cmp.add_argument("--json", action="store_true", help="print the table as JSON")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="trainlab",
        description="Train and evaluate PyTorch classifiers, MNIST first.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    parser.add_argument(
        "-v", "--verbose", action="store_true", help="say more of what is done (debug lines)"
    )
    parser.add_argument("--version", action="version", version=f"trainlab {_version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    _add_train(sub)
    _add_eval(sub)
    _add_data(sub)
    _add_predict(sub)
    _add_export(sub)
    _add_serve(sub)
    _add_runs(sub)
    from trainlab.tune.commands import add_parsers

    add_parsers(sub, add_config_flags, _trust_flag)
    return parser


def _out(text: str = "") -> None:
    print(text, flush=True)


def _err(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def cmd_train(args: argparse.Namespace) -> int:
    from trainlab.engine.distributed import Dist
    from trainlab.report.console import ConsoleLogger
    from trainlab.resolve import plan_run
    from trainlab.workflow import train

    given = given_settings(args)
    main = Dist.from_env().main  # under torchrun, rank 0 speaks for the job
    from trainlab.logs import say

    log = say if main else (lambda _line: None)
    note = None
    if given.get("lr") == "auto":
        given["lr"], note = _auto_lr(args, given, log)
    plan = plan_run(given, resume=args.resume, config_file=args.config, source="command line")
    if note:
        plan.notes["lr"] = note
    cfg = plan.config
    logger = ConsoleLogger(cfg.log_every, quiet=args.quiet)
    # the code a fresh run names on the command line is the user's own choice; a resume (or a
    # --config file naming code) imports it only with --trust-code
    trusted = args.trust_code or ("model" in given and args.resume is None)
    result = train(plan, callbacks=[logger], log=log, trust_code=trusted)
    Dist.from_env().leave()  # every rank together, after the last collective
    if not main:
        return 130 if result.status == "interrupted" else 0
    final = result.final
    if result.status == "interrupted":
        _err(
            f"interrupted: checkpoint saved to {result.last_path}. "
            f"Resume with: {'torchrun ... -m ' if 'WORLD_SIZE' in os.environ else ''}"
            f"trainlab train --resume {result.run_dir}"
        )
    summary = {
        "run_dir": str(result.run_dir),
        "status": result.status,
        "best": result.best,
        "final": final,
        "changed": {k: list(v) for k, v in plan.changed.items()},
        **({"stopped": result.stopped} if result.stopped else {}),
        **result.extra,
    }
    if args.json:
        _out(json.dumps(summary, indent=2))
    elif final:
        metric = "test_acc" if "test_acc" in final else "test_loss"
        value = f"{100 * final[metric]:.2f}%" if metric == "test_acc" else f"{final[metric]:.6f}"
        name = "test accuracy" if metric == "test_acc" else "test loss (MSE)"
        _out(
            f"{name} {value} after {final['epoch']} epoch(s); best {result.best['monitor']} "
            f"at epoch {result.best['epoch']}; run: {result.run_dir}"
        )
        if "sklearn_test_acc" in result.extra:
            _out(
                "scikit-learn accuracy_score on the test predictions: "
                f"{result.extra['sklearn_test_acc']:.4f} (trainlab: {final['test_acc']:.4f})"
            )
    return 130 if result.status == "interrupted" else 0


def _auto_lr(args, given: dict[str, Any], log) -> tuple[float, str]:
    """--lr auto: the range test (trainlab lr-find) on this run's settings, first."""
    from trainlab.errors import ConfigError
    from trainlab.tune.lrfind import RULE, range_test

    if args.resume:
        raise ConfigError("--lr auto with --resume: a resume keeps its run's learning rate.")
    log("--lr auto: running the learning-rate range test first (trainlab lr-find)")
    found = range_test(given, config_file=args.config)
    lr = float(f"{found.suggestion:.3g}")
    note = f"--lr auto: {lr:g} from the learning-rate range test ({RULE}; {found.stopped})"
    log(note)
    return lr, note


def _as_flags(message: str) -> str:
    """Name settings as the flags a command-line user typed (``batch_size`` -> ``--batch-size``)."""
    import re

    # only the names with an underscore: "model" or "epochs" are also plain words in a message
    fields = [f.name for f in dataclasses.fields(TrainConfig) if "_" in f.name]
    names = "|".join(sorted(fields, key=len, reverse=True))
    return re.sub(rf"(?<![\w-])({names})(?![\w-])", lambda m: flag_name(m.group(1)), message)


def format_eval(report) -> str:
    lines = [
        f"checkpoint {report.checkpoint}",
        f"{report.split} split: {report.n} samples",
        f"loss     {report.loss:.4f}",
    ]
    if report.accuracy is None:
        return "\n".join(lines)
    lines.append(f"accuracy {100 * report.accuracy:.2f}%")
    width = max(8, *(len(c) for c in report.classes))
    lines += ["", f"{'class':>{width}}  precision  recall     f1  support"]
    pc = report.per_class
    for i, name in enumerate(report.classes):
        lines.append(
            f"{name:>{width}}  {pc['precision'][i]:9.4f}  {pc['recall'][i]:6.4f}  "
            f"{pc['f1'][i]:5.4f}  {pc['support'][i]:7d}"
        )
    cell = max(5, len(str(max(max(r) for r in report.confusion))) + 1)
    lines += [
        "",
        "confusion matrix (rows: true, columns: predicted)",
        " " * width + "".join(f"{c[: cell - 1]:>{cell}}" for c in report.classes),
    ]
    for name, row in zip(report.classes, report.confusion, strict=True):
        lines.append(f"{name:>{width}}" + "".join(f"{v:>{cell}}" for v in row))
    return "\n".join(lines)


def cmd_eval(args: argparse.Namespace) -> int:
    from trainlab.workflow import evaluate_checkpoint

    report = evaluate_checkpoint(
        args.checkpoint,
        split=args.split,
        data_dir=args.data_dir,
        device=args.device,
        batch_size=args.batch_size,
        save_predictions=not args.no_save and args.split == "test",
        whole_split=args.all,
        trust_code=args.trust_code,
    )
    _out(json.dumps(report.to_dict(), indent=2) if args.json else format_eval(report))
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from trainlab.report import make_report

    paths = make_report(args.run_dir, top_k=args.top_k)
    for name, path in paths.items():
        _out(f"{name:9} {path}")
    if args.open:
        import webbrowser

        if not webbrowser.open(paths["html"].resolve().as_uri()):
            _err("no browser available here; open the file above yourself")
    return 0


def _table(header: list[str], rows: list[list], right: frozenset[int] = frozenset()) -> None:
    """Print rows in columns as wide as their widest cell; columns in ``right`` align right."""
    cells = [[str(h) for h in header], *([str(c) for c in row] for row in rows)]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    for row in cells:
        line = "  ".join(
            f"{c:>{w}}" if i in right else f"{c:<{w}}"
            for i, (c, w) in enumerate(zip(row, widths, strict=True))
        )
        _out(line.rstrip())


def cmd_compare(args: argparse.Namespace) -> int:
    from trainlab.report import compare_runs

    header, rows, png = compare_runs(args.run_dirs, args.output)
    if args.json:
        _out(json.dumps({"header": header, "rows": rows, "curves": str(png)}, indent=2))
        return 0
    _table(header, rows)
    _out(f"curves: {png}")
    return 0


IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff")


def expand_inputs(inputs: list[str]) -> tuple[list[str], list[tuple[str, str]]]:
    """Files from files, folders (their images, sorted) and globs; and (input, problem) pairs
    for what gave none."""
    import glob
    from pathlib import Path

    files, problems = [], []
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            found = sorted(
                str(p) for p in path.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
            )
            if not found:
                problems.append((item, f"no images ({', '.join(IMAGE_SUFFIXES)}) in this folder"))
            files += found
        elif path.is_file():
            files.append(item)
        elif any(ch in item for ch in "*?["):
            found = sorted(p for p in glob.glob(item) if Path(p).is_file())
            if not found:
                problems.append((item, "no file matches this pattern"))
            files += found
        else:
            problems.append((item, "no such file or folder"))
    seen: set[Path] = set()  # a file named and also inside a folder given is predicted once
    unique = []
    for name in files:
        key = Path(name).resolve()
        if key not in seen:
            seen.add(key)
            unique.append(name)
    return unique, problems


def cmd_predict(args: argparse.Namespace) -> int:
    from pathlib import Path

    from trainlab.inference import Predictor, picture_of

    predictor = Predictor(
        args.checkpoint,
        device=args.device,
        max_pixels=args.max_pixels,
        top_k=args.top_k,
        low_confidence=args.min_confidence,
        trust_code=args.trust_code,
    )
    files, problems = expand_inputs(args.inputs)
    results = predictor.predict(files, batch_size=args.batch_size) if files else []
    if args.preview:
        from trainlab.fsutil import atomic_write

        folder = Path(args.preview)
        used: set[str] = set()
        for r in results:
            if r.preview is None:
                continue
            stem = Path(r.source).stem
            name, i = f"{stem}.png", 1
            while name in used:
                i += 1
                name = f"{stem}-{i}.png"
            used.add(name)
            image = picture_of(r.preview)
            atomic_write(folder / name, lambda tmp, im=image: im.save(tmp, format="PNG"))
    failed = [r for r in results if not r.ok] + problems
    if args.json:
        _out(
            json.dumps(
                {
                    "checkpoint": predictor.path,
                    "predictions": [r.to_dict() for r in results],
                    "errors": [{"source": s, "error": e} for s, e in problems],
                    "low_confidence_below": args.min_confidence,
                },
                indent=2,
            )
        )
    else:
        rows = [
            [
                r.source,
                r.label,
                f"{r.probability:.4f}" + (" ?" if r.low_confidence else ""),
                "  ".join(f"{c}:{p:.3f}" for c, p in r.top),
            ]
            for r in results
            if r.ok
        ]
        if rows:
            _table(["file", "class", "probability", f"top {args.top_k}"], rows)
        if any(r.low_confidence for r in results if r.ok):
            _out(f"? probability below {args.min_confidence}: look at these yourself")
        if args.preview:
            _out(f"previews (what the model saw): {args.preview}")
    for r in results:
        if not r.ok:
            _err(f"error: {r.error}")
    for source, problem in problems:
        _err(f"error: {source}: {problem}")
    if failed:
        _err(f"{len(failed)} of {len(results) + len(problems)} input(s) failed.")
    return 1 if failed else 0


def cmd_export(args: argparse.Namespace) -> int:
    from trainlab.inference.export import export_model

    info = export_model(
        args.checkpoint,
        args.output,
        format=args.format,
        verify=not args.no_verify,
        data_dir=args.data_dir,
        trust_code=args.trust_code,
    )
    if args.json:
        _out(json.dumps(info, indent=2))
        return 0
    _out(f"wrote {info['path']} ({info['format']}, {info['size_bytes'] / 1e6:.2f} MB)")
    parity = info.get("parity")
    if parity:
        _out(
            f"checked on {parity['images']} {parity['inputs']}: max |logit diff| "
            f"{parity['max_abs_logit_diff']:.2e}, same predictions: {parity['same_argmax']}"
        )
    _out(f"input: {info['metadata']['input']}")
    return 0


def cmd_serve(args: argparse.Namespace) -> int:

    from trainlab.serve import serve

    for name in ("max_body_mb", "max_pixels", "max_batch", "max_in_flight", "port"):
        if getattr(args, name) <= 0:
            raise ConfigError(f"--{name.replace('_', '-')} must be positive")
    serve(
        args.checkpoint,
        host=args.host,
        port=args.port,
        api_key=args.api_key or os.environ.get("TRAINLAB_API_KEY") or None,
        device=args.device,
        max_body_bytes=int(args.max_body_mb * 1_000_000),
        max_pixels=args.max_pixels,
        max_batch=args.max_batch,
        max_in_flight=args.max_in_flight,
        queue_wait_s=max(0, args.queue_wait_ms) / 1000,
        log=_err,
        trust_code=args.trust_code,
        quiet=args.quiet,
    )
    return 0


def cmd_data(args: argparse.Namespace) -> int:
    from trainlab.data import load_dataset
    from trainlab.data.registry import get_dataset_spec
    from trainlab.logs import say
    from trainlab.options import parse_assignment

    spec = get_dataset_spec(args.name)  # an unknown name: the registry's list, did-you-mean
    if args.data_command == "fetch" and not spec.files:
        _out(f"{spec.name}: nothing to fetch ({spec.summary}; made in memory when used).")
        return 0
    if spec.files:
        from trainlab.data.root import resolve_root

        resolve_root(args.data_dir, create=args.data_command == "fetch")
    sources = None
    if args.data_command == "fetch":
        sources = tuple(s.strip() for s in args.source.split(",") if s.strip())
        from trainlab.data.mnist_family import SOURCES

        bad = [s for s in sources if s not in SOURCES]
        if bad or not sources:
            raise ConfigError(
                f"--source: unknown source(s) {', '.join(bad) or '(none)'}; "
                f"choose from {', '.join(SOURCES)}"
            )
    options = dict(parse_assignment(text, "--data-arg") for text in args.data_arg or [])
    verify = getattr(args, "verify", False)
    data = load_dataset(
        args.name, args.data_dir, sources=sources, log=say, verify=verify, **options
    )
    info = {
        "name": data.name,
        "kind": data.kind,
        "summary": spec.summary,
        "options": data.options,
        "task": data.task,
        "train": len(data.train_y),
        "test": len(data.test_y),
        "input_shape": list(data.input_shape),
        "classes": data.classes,
        "mean": data.mean,
        "std": data.std,
        **{k: v for k, v in data.info.items() if k != "settings"},
    }
    if args.json:
        _out(json.dumps(info, indent=2))
        return 0
    _out(
        f"{info['name']}: {info['summary']}; {info['task']} ({data.kind}), {info['train']} "
        f"train + {info['test']} test, input {'×'.join(map(str, info['input_shape']))}"
    )
    if spec.options:
        _out("options: " + ", ".join(f"{k}={_shown(v)}" for k, v in data.options.items()))
    if data.classes:
        _out(f"classes ({len(data.classes)}): {', '.join(data.classes)}")
    if data.mean:
        _out(f"mean {data.mean}  std {data.std}")
    for stem, path in info.get("files", {}).items():
        _out(f"  {stem}: {path}")
    if "verified" in info:
        _out(
            "verified: yes (md5 of every file matches)"
            if info["verified"]
            else "verified: no (no known checksum matched; files were read and checked for shape)"
        )
    return 0


def cmd_models(_args: argparse.Namespace) -> int:
    from trainlab.models import describe_models

    rows = describe_models()
    _table(
        ["name", "parameters", "input", "options", "summary"],
        [
            [
                r["name"],
                f"{r['parameters']:,}" if r["parameters"] is not None else "-",
                r["input"],
                " ".join(f"{k}={_shown(v)}" for k, v in r["options"].items()) or "-",
                r["summary"] + ("" if r["source"] == "builtin" else f" [{r['source']}]"),
            ]
            for r in rows
        ],
        right=frozenset({1}),
    )
    _out(
        "\nparameter counts are for MNIST (10 classes); linreg's for 2 features. Your own "
        "model: --model FILE.py:Class [--model-arg NAME=VALUE]."
    )
    return 0


def cmd_recipes(_args: argparse.Namespace) -> int:
    from trainlab.recipes import RECIPES, command_for

    for recipe in RECIPES.values():
        _out(
            f"{recipe.name}\n  from:    {recipe.source}\n  what:    {recipe.summary}\n"
            f"  claim:   {recipe.claim}\n  run:     {command_for(recipe)}\n"
        )
    _out("Any field can be overridden: trainlab train --recipe seed-mlp --epochs 2 --subset 5000")
    return 0


def _refuse_unknown(parser: argparse.ArgumentParser, args, extra: list[str]) -> None:
    """Unknown arguments get the usage of the command they were given to, and a did-you-mean
    (argparse would print the top level's usage)."""
    import difflib

    command = parser
    if args.command is not None:
        command = parser._subparsers._group_actions[0].choices[args.command]
        nested = getattr(args, "data_command", None)
        if nested is not None:
            command = command._subparsers._group_actions[0].choices[nested]
    flags = [s for a in command._actions for s in a.option_strings]
    hints = []
    for item in extra:
        close = difflib.get_close_matches(item.split("=")[0], flags, n=1, cutoff=0.6)
        if item.startswith("-") and close:
            hints.append(f"{item}: did you mean {close[0]}?")
    command.error(f"unrecognized arguments: {' '.join(extra)}" + "".join(f"; {h}" for h in hints))


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra:
        _refuse_unknown(parser, args, extra)
    if args.command is None:
        parser.print_help()
        return 2
    handlers = {
        "train": cmd_train,
        "eval": cmd_eval,
        "data": cmd_data,
        "models": cmd_models,
        "recipes": cmd_recipes,
        "report": cmd_report,
        "compare": cmd_compare,
        "predict": cmd_predict,
        "export": cmd_export,
        "serve": cmd_serve,
    }
    from trainlab.tune import commands as tune

    tuning = {"sweep": tune.cmd_sweep, "lr-find": tune.cmd_lr_find, "cv": tune.cmd_cv}
    argv = list(sys.argv[1:] if argv is None else argv)
    from trainlab.logs import to_stderr

    try:
        with to_stderr(quiet=getattr(args, "quiet", False), verbose=args.verbose):
            if args.command in tuning:  # the sweep's workers rerun its own arguments
                rest = argv[argv.index(args.command) + 1 :]
                return tuning[args.command](args, rest, given_settings(args))
            return handlers[args.command](args)
    except TrainlabError as e:
        if args.debug:
            raise
        message = str(e)
        if args.command == "train" and isinstance(e, ConfigError):
            message = _as_flags(message)
        rank = os.environ.get("RANK") if "WORLD_SIZE" in os.environ else None
        _err(f"error{f' (rank {rank})' if rank is not None else ''}: {message}")
        return e.exit_code
    except KeyboardInterrupt:
        if args.debug:
            raise
        _err("aborted.")
        return 130
    except BrokenPipeError:  # `trainlab ... | head`: the reader left; stop quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except OSError as e:  # the machine's side: disk full, permissions, a folder gone
        if args.debug:
            raise
        where = f" ({e.filename})" if e.filename else ""
        _err(f"error: {e.strerror or e}{where}. Check the disk space and the folder's permissions.")
        return 1
