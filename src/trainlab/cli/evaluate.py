"""``trainlab eval | report | compare``: what a run scored, drawn and set beside others."""

from __future__ import annotations

import argparse
import json

from trainlab.cli.common import err, int_in, out, table, trust_flag


def add(sub) -> dict[str, argparse.ArgumentParser]:
    ev = sub.add_parser("eval", help="evaluate a checkpoint: accuracy, per-class P/R/F1, confusion")
    ev.add_argument("checkpoint", help="a .pt file or a run directory (uses its best.pt)")
    ev.add_argument(
        "--split",
        choices=["test", "val", "train"],
        default="test",
        help="which split to evaluate; val is the run's --val-split (default: test)",
    )
    trust_flag(ev)
    ev.add_argument("--data-dir", help="data root, if not the one the run used")
    ev.add_argument("--device", default="auto", help="device (default: auto)")
    ev.add_argument(
        "--batch-size",
        type=int_in(1),
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
    cal = sub.add_parser(
        "calibrate",
        help="fit the temperature that makes a run's probabilities honest (on its val split)",
        description="Fit one temperature on the run's validation split (the logits divided by "
        "it, by the NLL) and record it in the checkpoint and config.toml; predict, serve and "
        "export then use it. The expected calibration error on the test split is printed "
        "before and after. A run with a validation split is calibrated when it ends.",
    )
    cal.add_argument("checkpoint", help="a .pt file or a run directory (uses its best.pt)")
    trust_flag(cal)
    cal.add_argument("--data-dir", help="data root, if not the one the run used")
    cal.add_argument("--device", default="auto", help="device (default: auto)")
    cal.add_argument("--json", action="store_true", help="print the record as JSON")
    cal.add_argument(
        "--reject-default",
        choices=("on", "off"),
        default=None,
        help='make "none of these" the run\'s default for predict and serve (their --reject/'
        "--no-reject still decide), or not (default: as the run has it, off)",
    )
    cal.set_defaults(func=cmd_calibrate)
    ev.set_defaults(func=cmd_eval)
    rep.set_defaults(func=cmd_report)
    cmp.set_defaults(func=cmd_compare)
    return {"eval": ev, "report": rep, "compare": cmp, "calibrate": cal}


def format_eval(report) -> str:
    from trainlab.engine.metrics import class_balanced

    lines = [
        f"checkpoint {report.checkpoint}",
        f"{report.split} split: {report.n} samples",
        f"loss     {report.loss:.4f}",
    ]
    if report.scores:
        return "\n".join(lines + format_multilabel(report))
    if report.accuracy is None:
        if getattr(report, "r2", None) is not None:  # regression: the share of variance explained
            lines.append(f"R²       {report.r2:.4f}")
        return "\n".join(lines)
    lines.append(f"accuracy {100 * report.accuracy:.2f}%")
    balanced = class_balanced(report.confusion)  # every class counted the same
    lines.append(f"balanced accuracy {100 * balanced['balanced_acc']:.2f}%")
    lines.append(f"macro F1 {balanced['macro_f1']:.4f}")
    width = max(8, *(len(c) for c in report.classes))
    train = report.train_counts
    # the training count beside the recall: a rare class's low recall shows as such
    header = "  precision  recall     f1  support" + ("    train" if train else "")
    lines += ["", f"{'class':>{width}}" + header]
    pc = report.per_class
    for i, name in enumerate(report.classes):
        lines.append(
            f"{name:>{width}}  {pc['precision'][i]:9.4f}  {pc['recall'][i]:6.4f}  "
            f"{pc['f1'][i]:5.4f}  {pc['support'][i]:7d}" + (f"  {train[i]:7d}" if train else "")
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


def cmd_calibrate(args: argparse.Namespace) -> int:
    from trainlab.engine.calibration import line
    from trainlab.workflow import calibrate_checkpoint

    record = calibrate_checkpoint(
        args.checkpoint,
        data_dir=args.data_dir,
        device=args.device,
        trust_code=args.trust_code,
        reject_default=None if args.reject_default is None else args.reject_default == "on",
    )
    out(json.dumps(record, indent=2) if args.json else line(record))
    return 0


def format_multilabel(report) -> list[str]:
    """A multi-label checkpoint's figures and per-label table, at its recorded thresholds."""
    s = report.scores
    lines = [
        f"micro-F1 {s['micro_f1']:.4f}  macro-F1 {s['macro_f1']:.4f}  mAP {s['map']:.4f}  "
        f"subset accuracy {100 * s['subset_acc']:.2f}%"
    ]
    width = max(8, *(len(c) for c in report.classes))
    lines += ["", f"{'label':>{width}}  threshold  precision  recall     f1      AP  support"]
    pc = report.per_class
    for i, name in enumerate(report.classes):
        lines.append(
            f"{name:>{width}}  {report.thresholds[i]:9.4f}  {pc['precision'][i]:9.4f}  "
            f"{pc['recall'][i]:6.4f}  {pc['f1'][i]:5.4f}  {pc['average_precision'][i]:6.4f}  "
            f"{pc['support'][i]:7d}"
        )
    return lines


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
    out(json.dumps(report.to_dict(), indent=2) if args.json else format_eval(report))
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from trainlab.report import make_report

    paths = make_report(args.run_dir, top_k=args.top_k)
    for name, path in paths.items():
        out(f"{name:9} {path}")
    if args.open:
        import webbrowser

        if not webbrowser.open(paths["html"].resolve().as_uri()):
            err("no browser available here; open the file above yourself")
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    from trainlab.report import compare_runs

    header, rows, png = compare_runs(args.run_dirs, args.output)
    if args.json:
        out(json.dumps({"header": header, "rows": rows, "curves": str(png)}, indent=2))
        return 0
    table(header, rows)
    out(f"curves: {png}")
    return 0
