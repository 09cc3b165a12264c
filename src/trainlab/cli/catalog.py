"""``trainlab data | models | recipes``: what there is to train on and with."""

from __future__ import annotations

import argparse
import json

from trainlab.cli.common import out, shown, table


def add(sub) -> dict[str, argparse.ArgumentParser]:
    """`trainlab data fetch|info`, `trainlab models`, `trainlab recipes`."""
    from trainlab.data import dataset_names

    names = ", ".join(dataset_names())
    data = sub.add_parser("data", help="fetch datasets or show what is there")
    data.set_defaults(func=cmd_data)
    data_sub = data.add_subparsers(dest="data_command", metavar="ACTION", required=True)
    made = {"data": data}
    for action, text in (
        ("fetch", "download and verify a dataset into the data root"),
        ("info", "counts, classes, mean/std, files and whether they are verified"),
    ):
        p = made[f"data {action}"] = data_sub.add_parser(action, help=text, description=text)
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
    for name, text, handler in (
        ("models", "list the models with parameter counts and expected input", cmd_models),
        ("recipes", "list the seeds' recipes (trainlab train --recipe NAME)", cmd_recipes),
    ):
        made[name] = sub.add_parser(name, help=text)
        made[name].set_defaults(func=handler)
    return made


def cmd_data(args: argparse.Namespace) -> int:
    from trainlab.data import load_dataset
    from trainlab.data.registry import get_dataset_spec
    from trainlab.options import parse_assignment

    spec = get_dataset_spec(args.name)  # an unknown name: the registry's list, did-you-mean
    if args.data_command == "fetch" and not spec.files:
        out(f"{spec.name}: nothing to fetch ({spec.summary}; made in memory when used).")
        return 0
    if spec.files:
        from trainlab.data.root import resolve_root

        resolve_root(args.data_dir, create=args.data_command == "fetch")
    sources = None
    if args.data_command == "fetch":
        # the dataset's side checks them (which sources exist is the data's own knowledge)
        sources = tuple(s.strip() for s in args.source.split(",") if s.strip())
    options = dict(parse_assignment(text, "--data-arg") for text in args.data_arg or [])
    verify = getattr(args, "verify", False)
    data = load_dataset(args.name, args.data_dir, sources=sources, verify=verify, **options)
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
        out(json.dumps(info, indent=2))
        return 0
    out(
        f"{info['name']}: {info['summary']}; {info['task']} ({data.kind}), {info['train']} "
        f"train + {info['test']} test, input {'×'.join(map(str, info['input_shape']))}"
    )
    if spec.options:
        out("options: " + ", ".join(f"{k}={shown(v)}" for k, v in data.options.items()))
    if data.classes:
        out(f"classes ({len(data.classes)}): {', '.join(data.classes)}")
    if data.mean:
        out(f"mean {data.mean}  std {data.std}")
    for stem, path in info.get("files", {}).items():
        out(f"  {stem}: {path}")
    if "verified" in info:
        out(
            "verified: yes (md5 of every file matches)"
            if info["verified"]
            else "verified: no (no known checksum matched; files were read and checked for shape)"
        )
    return 0


def cmd_models(_args: argparse.Namespace) -> int:
    from trainlab.models import describe_models

    rows = describe_models()
    table(
        ["name", "parameters", "input", "options", "summary"],
        [
            [
                r["name"],
                f"{r['parameters']:,}" if r["parameters"] is not None else "-",
                r["input"],
                " ".join(f"{k}={shown(v)}" for k, v in r["options"].items()) or "-",
                r["summary"] + ("" if r["source"] == "builtin" else f" [{r['source']}]"),
            ]
            for r in rows
        ],
        right=frozenset({1}),
    )
    out(
        "\nparameter counts are for MNIST (10 classes); linreg's for 2 features. Your own "
        "model: --model FILE.py:Class [--model-arg NAME=VALUE]."
    )
    _pretrained_backbones()
    return 0


def _pretrained_backbones() -> None:
    from trainlab.models.pretrained import LITE_PUBLISHED, describe_backbones

    out("\npretrained backbones (--pretrained, or trainlab predict NAME photo.jpg):")
    table(
        ["name", "parameters", "input", "ImageNet top-1", "weights"],
        [
            [
                r["name"],
                f"{r['parameters']:,} ({r['published_millions']} M)",
                r["input"],
                f"{r['imagenet_top1']}%",
                r["weights"],
            ]
            for r in describe_backbones()
        ],
        right=frozenset({1, 3}),
    )
    out(
        "\nparameters counted with ImageNet's 1,000 classes (in brackets as published); top-1 "
        f"as published ({LITE_PUBLISHED})."
    )


def cmd_recipes(_args: argparse.Namespace) -> int:
    from trainlab.recipes import RECIPES, command_for

    for recipe in RECIPES.values():
        out(
            f"{recipe.name}\n  from:    {recipe.source}\n  what:    {recipe.summary}\n"
            f"  claim:   {recipe.claim}\n  run:     {command_for(recipe)}\n"
        )
    out("Any field can be overridden: trainlab train --recipe seed-mlp --epochs 2 --subset 5000")
    return 0
