"""``trainlab predict | export | serve``: a trained model put to use."""

from __future__ import annotations

import argparse
import json
import os

from trainlab.cli.common import err, float_in, int_in, out, table, trust_flag


def add(sub) -> dict[str, argparse.ArgumentParser]:
    """`trainlab predict`, `trainlab export`, `trainlab serve`."""
    from trainlab.cli.export import add_export, cmd_export

    made = {"predict": _add_predict(sub), "export": add_export(sub), "serve": _add_serve(sub)}
    for name, handler in (("predict", cmd_predict), ("export", cmd_export), ("serve", cmd_serve)):
        made[name].set_defaults(func=handler)
    return made


def _add_predict(sub) -> argparse.ArgumentParser:
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
        "(efficientnet-lite0, -lite1, -lite2: ImageNet's classes)",
    )
    pred.add_argument(
        "inputs",
        nargs="+",
        metavar="INPUT",
        help="image files, folders or globs; a folder's class folders (test/<class>/...) are "
        "read too, and when they are named after the model's classes the accuracy is printed",
    )
    pred.add_argument("--json", action="store_true", help="print the results as JSON")
    trust_flag(pred)
    pred.add_argument(
        "--preview", metavar="DIR", help="save the image the model saw for each input"
    )
    pred.add_argument(
        "--top-k", type=int_in(1), default=3, help="classes listed per image (default: 3)"
    )
    pred.add_argument(
        "--min-confidence",
        type=float_in(0, 1),
        default=0.5,
        help="flag predictions whose probability is below this (default: 0.5)",
    )
    pred.add_argument(
        "--threshold",
        type=float_in(0, 1, above=True),
        default=None,
        help="a multi-label model: the probability over which a label is given, for every "
        "label (default: the thresholds its run tuned per label and recorded)",
    )
    pred.add_argument(
        "--max-pixels",
        type=int_in(1),
        default=16_000_000,
        help="refuse larger images before decoding them (default: 16000000)",
    )
    pred.add_argument(
        "--batch-size", type=int_in(1), default=256, help="images per model call (default: 256)"
    )
    pred.add_argument("--device", default="auto", help="device (default: auto)")
    _add_predict_outputs(pred)
    return pred


def _add_predict_outputs(pred) -> None:
    """What predict writes besides its table: a CSV, rejections, explanations."""
    pred.add_argument(
        "--csv",
        metavar="FILE",
        help="also write the predictions to FILE: one row per input, in order (path, label, "
        "probability; an input that failed has its reason in an error column)",
    )
    pred.add_argument(
        "--reject",
        action=argparse.BooleanOptionalAction,
        default=None,
        help='answer "none of these" for an input unlike the training data: its energy score '
        "over the threshold the run set on its validation split (kept 95%% of known images); "
        "the score is in --json (default: the run's, `trainlab calibrate RUN --reject-default "
        "on` sets it; else off)",
    )
    pred.add_argument(
        "--explain",
        metavar="DIR",
        help="write where the model looked: DIR/<image>.png, the image it saw with its heat "
        "map over it (Grad-CAM on the last convolution; occlusion for a model without one), "
        "and the map in --json",
    )
    pred.add_argument(
        "--csv-probabilities",
        action="store_true",
        help="--csv: add one column per class with its probability",
    )
    pred.add_argument(
        "--csv-columns",
        metavar="A,B",
        help="--csv: the columns, in order, from path, id (the file's stem), label, "
        "probability, error, row (a table's row number) (id,label: a Kaggle submission; default: "
        "path,label,probability, or row,label,probability for a table's rows)",
    )


def _add_serve(sub) -> argparse.ArgumentParser:
    from trainlab.data.kinds import KINDS

    # what the page offers is each kind's to say (a drawing pad, an upload and the camera)
    kinds = [kind for kind in KINDS.all().values() if kind.page is not None]
    pages = "; ".join(f"for {kind.summary}, {kind.page.hint}" for kind in kinds)
    srv = sub.add_parser(
        "serve",
        help="a page to try a model on your own inputs, and a JSON API",
        description="Serve a page to try the model and a JSON API (/api/predict, "
        "/api/predict/batch, /api/model, /api/health; schema at /openapi.json). The page "
        f"depends on the data the model was trained on: {pages}. A table's model takes rows as "
        'JSON objects ({"age": 41, ...}, or a list of them) at /api/predict. A model of another '
        "kind of data has no page and is not served. Needs the [serve] extra. Ctrl-C stops it.",
    )
    srv.add_argument("checkpoint", help="a .pt file or a run directory (uses its best.pt)")
    srv.add_argument("--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1)")
    srv.add_argument("--port", type=int_in(1, 65535), default=8000, help="port (default: 8000)")
    srv.add_argument(
        "--quiet", action="store_true", help="no line per request (method, path, status, ms)"
    )
    trust_flag(srv)
    srv.add_argument(
        "--api-key",
        default=None,
        help="require 'Authorization: Bearer KEY' on every API call (default: $TRAINLAB_API_KEY)",
    )
    srv.add_argument("--device", default="auto", help="device (default: auto)")
    srv.add_argument(
        "--max-body-mb",
        type=float_in(0, above=True),
        default=2.0,
        help="largest request body in MB (default: 2)",
    )
    srv.add_argument(
        "--max-pixels", type=int_in(1), default=16_000_000, help="largest image (default: 16000000)"
    )
    srv.add_argument(
        "--threshold",
        type=float_in(0, 1, above=True),
        default=None,
        help="a multi-label model: answer with the labels whose probability is at or over this "
        "(default: the thresholds its run tuned per label and recorded)",
    )
    srv.add_argument(
        "--reject",
        action=argparse.BooleanOptionalAction,
        default=None,
        help='answer "none of these" for an image unlike the training data (as predict '
        "--reject; a request may also ask with ?reject=1) (default: the run's; else off)",
    )
    srv.add_argument(
        "--max-batch", type=int_in(1), default=16, help="images per batch call (default: 16)"
    )
    srv.add_argument(
        "--max-in-flight",
        type=int_in(1),
        default=4,
        help="predictions at once; more wait --queue-wait-ms, then get 503 (default: 4)",
    )
    srv.add_argument(
        "--queue-wait-ms",
        type=int_in(0),
        default=500,
        help="how long a request may wait for a place before 503 (default: 500)",
    )
    return srv


def cmd_predict(args: argparse.Namespace) -> int:
    from trainlab.inference import Prediction, Predictor
    from trainlab.inference.inputs import find_inputs, known_truths
    from trainlab.inference.table import csv_columns, write_predictions_csv

    if args.csv_columns and not args.csv or args.csv_probabilities and not args.csv:
        err("error: --csv-columns and --csv-probabilities shape the file --csv FILE writes.")
        return 2
    predictor = Predictor(
        args.checkpoint,
        device=args.device,
        max_pixels=args.max_pixels,
        top_k=args.top_k,
        low_confidence=args.min_confidence,
        trust_code=args.trust_code,
        threshold=args.threshold,
    )
    if args.reject if args.reject is not None else predictor.reject_default:
        predictor.check_reject()
        predictor.reject = True
    if args.csv:  # the columns checked before any image is read
        columns = csv_columns(args.csv_columns, predictor.classes, args.csv_probabilities)
    if predictor.takes_rows:  # a table's model: each input is a CSV of rows
        return _predict_rows(predictor, args, columns if args.csv else None)
    found = find_inputs(args.inputs)
    problems = found.problems
    results = predictor.predict(found.files, batch_size=args.batch_size) if found.files else []
    truths, note = known_truths(found, predictor.classes)
    truths = truths or [None] * len(results)
    if args.csv:
        unread = [Prediction(source=s, error=f"{s}: {p}") for s, p in problems]
        # in the order the inputs were given: a missing file between two images stays there
        where = found.file_inputs + found.problem_inputs
        answers = [
            r for _, r in sorted(zip(where, results + unread, strict=True), key=lambda p: p[0])
        ]
        written = write_predictions_csv(args.csv, answers, predictor.classes, columns=columns)
        err(f"wrote {len(results) + len(problems)} prediction row(s) to {written}")
    if args.preview:
        _write_previews(results, args.preview)
    if args.explain:
        _write_explanations(predictor, results, args.explain)
    if args.json:
        _print_json(predictor, results, truths, problems, args)
    else:
        _print_table(predictor, results, truths, args)
    if note:
        err(f"note: {note}")
    for r in results:
        if not r.ok:
            err(f"error: {r.error}")
    for source, problem in problems:
        err(f"error: {source}: {problem}")
    failed = [r for r in results if not r.ok] + problems
    if failed:
        err(f"{len(failed)} of {len(results) + len(problems)} input(s) failed.")
    return 1 if failed else 0


def _predict_rows(predictor, args: argparse.Namespace, columns) -> int:
    """predict for a table's model: one answer per row, numbered from 1 (``--csv``: the row
    number is the input column)."""
    from trainlab.inference.rows import predict_rows
    from trainlab.inference.table import write_predictions_csv

    results = predict_rows(predictor, args.inputs, batch_size=args.batch_size)
    if args.csv and not args.csv_columns:  # the row number is the input column
        from trainlab.inference.table import ROW_COLUMNS, VALUE_COLUMNS

        extra = list(predictor.classes) if args.csv_probabilities else []
        columns = [*(VALUE_COLUMNS if predictor.regression else ROW_COLUMNS), *extra]
    if args.csv:
        written = write_predictions_csv(args.csv, results, predictor.classes, columns=columns)
        err(f"wrote {len(results)} prediction row(s) to {written}")
    truths = [None] * len(results)
    if args.json:
        _print_json(predictor, results, truths, [], args)
    elif predictor.regression:
        values = [[r.source, f"{r.value:.6g}"] for r in results if r.ok]
        if values:
            table(["row", "value"], values)
    else:
        _print_table(predictor, results, truths, args)
    failed = [r for r in results if not r.ok]
    for r in failed:
        err(f"error: {r.error}")
    if failed:
        err(f"{len(failed)} of {len(results)} row(s) failed.")
    return 1 if failed else 0


def _scored(results, truths) -> tuple[int, int]:
    """(correct, scored): the answers for images whose true class is known."""
    pairs = [(r.label, t) for r, t in zip(results, truths, strict=True) if r.ok and t is not None]
    return sum(label == truth for label, truth in pairs), len(pairs)


def _png_names(results):
    """(result, file name) for each result with a preview: its stem, made unique."""
    from pathlib import Path

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
        yield r, name


def _write_previews(results, where: str) -> None:
    from pathlib import Path

    from trainlab.fsutil import atomic_write
    from trainlab.inference import picture_of

    for r, name in _png_names(results):
        image = picture_of(r.preview)
        atomic_write(Path(where) / name, lambda tmp, im=image: im.save(tmp, format="PNG"))


def _write_explanations(predictor, results, where: str) -> None:
    from pathlib import Path

    from trainlab.fsutil import atomic_write
    from trainlab.inference.explain import Explainer, overlay

    explainer = Explainer(predictor)
    maps = dict(zip(map(id, results), explainer.heat_maps(results), strict=True))
    for r, name in _png_names(results):
        if maps[id(r)] is None:
            continue
        picture = overlay(r.preview, maps[id(r)])
        atomic_write(Path(where) / name, lambda tmp, im=picture: im.save(tmp, format="PNG"))
    count = sum(m is not None for m in maps.values())
    err(f"wrote {count} explanation(s) ({explainer.method}) to {where}")


def _print_json(predictor, results, truths, problems, args) -> None:
    answers = [r.to_dict() for r in results]
    for answer, truth in zip(answers, truths, strict=True):
        if truth is not None:
            answer["true_label"] = truth
    correct, scored = _scored(results, truths)
    summary = {"accuracy": correct / scored, "scored": scored} if scored else {}
    document = {
        "checkpoint": predictor.path,
        "predictions": answers,
        "errors": [{"source": s, "error": e} for s, e in problems],
        "low_confidence_below": args.min_confidence,
        **summary,
    }
    out(json.dumps(document, indent=2))


def _print_table(predictor, results, truths, args) -> None:
    labelled = any(t is not None for t in truths)
    rows = [
        [
            r.source,
            f"none of these ({r.label}?)" if r.rejected else r.label,
            *([t or ""] if labelled else []),
            _probability(r) + (" ?" if r.low_confidence else ""),
            "  ".join(f"{c}:{p:.3f}" for c, p in r.top),
        ]
        for r, t in zip(results, truths, strict=True)
        if r.ok
    ]
    shown = min(args.top_k, len(predictor.classes))
    header = ["file", "class", *(["true"] if labelled else []), "probability", f"top {shown}"]
    if rows:
        table(header, rows)
    if any(r.rejected for r in results):
        limit = predictor.reject_threshold
        out(f"none of these: energy score over {limit:.3f}, the run's threshold")
    if any(r.low_confidence for r in results if r.ok):
        out(f"? probability below {args.min_confidence}: look at these yourself")
    if args.preview:
        out(f"previews (what the model saw): {args.preview}")
    correct, scored = _scored(results, truths)
    if scored:  # the figure `trainlab eval` gives on these images
        out(
            f"accuracy {100 * correct / scored:.2f}% ({correct} of {scored} images in class "
            "folders named after the model's classes)"
        )


def _probability(r) -> str:
    if r.labels is not None:  # a multi-label model: each label's, in the same order
        return " ".join(f"{p:.4f}" for _, p in r.labels)
    return f"{r.probability:.4f}"


def cmd_serve(args: argparse.Namespace) -> int:

    from trainlab.serve import serve

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
        queue_wait_s=args.queue_wait_ms / 1000,
        trust_code=args.trust_code,
        quiet=args.quiet,
        threshold=args.threshold,
        reject=args.reject,
    )
    return 0
