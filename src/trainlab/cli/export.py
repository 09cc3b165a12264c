"""``trainlab export``: the model as files for other runtimes, each scored and kept or refused."""

from __future__ import annotations

import argparse
import json

from trainlab.cli.common import float_in, out, table, trust_flag

# the registry's names (trainlab.inference.targets), written out so that building the parser
# imports no torch; a test keeps the two in step
FORMATS = "onnx, onnx-int8, web, openvino, pt2"


def add_export(sub) -> argparse.ArgumentParser:
    exp = sub.add_parser(
        "export",
        help="export a model to ONNX, int8 ONNX, a web folder, OpenVINO or torch.export",
        description="Write the model, its preprocessing (normalisation, resize, TTA) and "
        "temperature included, for each target asked; each takes float32 images in [0, 1], "
        "N×C×H×W with a dynamic batch size. Each target is scored on the run's test split "
        "beside the checkpoint (metric, agreement, size, latency at batch 1 and 64) and "
        "refused when it loses more than --max-drop points; the table goes to exports.json "
        "beside the run. Exit status 1 when a target is refused.",
    )
    exp.add_argument("checkpoint", help="a .pt file or a run directory (uses its best.pt)")
    exp.add_argument(
        "--format",
        default="onnx",
        help=f"one or more of {FORMATS}, separated by commas (default: onnx)",
    )
    exp.add_argument(
        "--output",
        "-o",
        help="the file to write for one format, the folder for several (default: beside the "
        "checkpoint: best.onnx, best.int8.onnx, best.openvino.xml, best.pt2)",
    )
    exp.add_argument(
        "--max-drop",
        type=float_in(0.0),
        default=0.5,
        help="refuse a target that loses more than this many points of the test metric, or "
        "(a float target) disagrees with the checkpoint on more than this %% of the test "
        "inputs (default: 0.5)",
    )
    exp.add_argument(
        "--force", action="store_true", help="keep a target the check refuses, marked forced"
    )
    exp.add_argument(
        "--no-verify",
        action="store_true",
        help="skip the parity check and the scoring (nothing is refused)",
    )
    exp.add_argument("--data-dir", help="data root for the test split and calibration images")
    exp.add_argument("--json", action="store_true", help="print the result as JSON")
    trust_flag(exp)
    return exp


def cmd_export(args: argparse.Namespace) -> int:
    from trainlab.inference.export import ExportError
    from trainlab.inference.targets.pipeline import export_targets

    result = export_targets(
        args.checkpoint,
        args.format,
        args.output,
        max_drop=args.max_drop,
        force=args.force,
        verify=not args.no_verify,
        data_dir=args.data_dir,
        trust_code=args.trust_code,
    )
    if args.json:
        # one target: its record's keys at the top, as the single-format export gave them
        single = result["targets"][0] if len(result["targets"]) == 1 else {}
        out(json.dumps({**single, "format": single.get("target"), **result}, indent=2,
                       default=str) if single else json.dumps(result, indent=2))  # fmt: skip
    else:
        print_table(result)
    if result["refused"]:
        reasons = "; ".join(
            f"{r['target']}: {r['refused_because']}"
            for r in result["targets"]
            if r["status"] == "refused"
        )
        raise ExportError(
            f"refused {', '.join(result['refused'])} ({reasons}); no file was kept for it. "
            "Raise --max-drop, or pass --force to keep it marked as forced."
        )
    return 0


def _ms(latency: dict | None, batch: str) -> str:
    return f"{latency[batch]:.2f}" if latency else "-"


def print_table(result: dict) -> None:
    """The targets side by side with the checkpoint, and what a person should know."""
    reference = result["reference"]
    rows = []
    if reference:
        value = reference["value"]
        rows.append(["checkpoint (PyTorch)", "-" if value is None else f"{value:.2f}", "-",
                     "100.00", "-", _ms(reference["latency_ms"], "1"),
                     _ms(reference["latency_ms"], "64"), "reference"])  # fmt: skip
    for r in result["targets"]:
        value, drop = r.get("value"), r.get("drop_points")
        rows.append([
            r["target"],
            "-" if value is None else f"{value:.2f}",
            "-" if drop is None else f"{drop:+.2f}",
            f"{r['agreement']:.2f}" if "agreement" in r else "-",
            f"{r['size_bytes'] / 1e6:.2f}",
            _ms(r.get("latency_ms"), "1"),
            _ms(r.get("latency_ms"), "64"),
            r["status"],
        ])  # fmt: skip
    metric = reference["metric"] if reference else "metric"
    table(["target", f"{metric} %", "drop", "agree %", "MB", "ms@1", "ms@64", "status"], rows,
          right=frozenset({1, 2, 3, 4, 5, 6}))  # fmt: skip
    for r in result["targets"]:
        compared = r.get("float32")
        if compared and not compared["faster_at_64"]:
            out(f"note: {r['target']} is not faster than float32 ONNX on this CPU "
                f"({r['latency_ms']['64']:.2f} ms against {compared['latency_ms']['64']:.2f} ms "
                "at batch 64)")  # fmt: skip
        if r["status"] == "forced":
            out(f"note: {r['target']} kept by --force: {r['refused_because']}")
        if r.get("path"):
            out(f"wrote {r['path']}")
    out(f"input: {result['metadata']['input']}")
    if reference:
        out(f"scored on {reference['test_inputs']} test inputs; table: {result['exports_json']}")
    else:
        out(f"not scored (--no-verify); table: {result['exports_json']}")
