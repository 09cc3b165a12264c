"""Write the documentation that code and measurements can write: nothing here is typed by hand.

Usage:
    python scripts/docs_gen.py            (run by `make docs` before `mkdocs build`)
    python scripts/docs_gen.py --check    (exit 1 when README.md's figures are out of date)

What it writes:
- ``docs/reference/cli.md``: every command and flag, from trainlab's own argparse parser;
- ``docs/reference/models.md``, ``datasets.md`` and ``recipes.md``: the registries' tables;
- ``docs/benchmarks/*.md``: every table rendered from ``benchmarks/results/*.json``, each with
  the machine, date and commit it was measured on;
- the headline table of ``README.md``, between ``<!-- BEGIN HEADLINE -->`` and
  ``<!-- END HEADLINE -->`` (the one generated file that is committed; a test checks it).

The files under docs/ are build outputs (listed in .gitignore), so the site always describes the
parser and the results of the checkout it is built from.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "scripts"))

from docs_benchmarks import (  # noqa: E402
    GENERATED,
    benchmark_budget,
    benchmark_busy,
    benchmark_d2l,
    benchmark_history,
    benchmark_latest,
    benchmark_log,
    benchmark_transfer,
    cell,
    headline,
    pick,
)

HEADLINE = re.compile(r"<!-- BEGIN HEADLINE -->.*<!-- END HEADLINE -->", re.S)


# ---------------------------------------------------------------- the command line


def _subcommands(parser: argparse.ArgumentParser, words: tuple[str, ...] = ()):
    """(words, parser, help) for every command and nested command, in the parser's order."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {a.dest: a.help for a in action._choices_actions}
            for name, child in action.choices.items():
                yield (*words, name), child, helps.get(name, "")
                yield from _subcommands(child, (*words, name))


def _help(parser: argparse.ArgumentParser, action: argparse.Action) -> str:
    """The help text as --help prints it (``%(default)s`` filled in, ``%%`` as ``%``)."""
    text = action.help or ""
    try:
        return text % {**vars(action), "prog": parser.prog}
    except (KeyError, TypeError, ValueError):
        return text


def _flag_rows(parser: argparse.ArgumentParser) -> list[tuple[str, str]]:
    """(title, markdown table) per argument group that has arguments, help flag left out."""
    groups = []
    for group in parser._action_groups:
        rows = []
        for action in group._group_actions:
            if isinstance(action, argparse._SubParsersAction | argparse._HelpAction):
                continue
            if action.help == argparse.SUPPRESS:
                continue
            if action.option_strings:
                names = ", ".join(f"`{o}`" for o in action.option_strings)
                if action.nargs != 0:
                    metavar = action.metavar or action.dest.upper()
                    if isinstance(metavar, tuple):
                        metavar = " ".join(metavar)
                    names += f" `{metavar}`"
            else:
                names = f"`{action.metavar or action.dest}`"
            default = action.default
            shown = "" if default in (None, False, argparse.SUPPRESS) else f"`{default}`"
            rows.append(f"| {names} | {cell(_help(parser, action))} | {cell(shown)} |")
        if rows:
            table = "| argument | what | default |\n|---|---|---|\n" + "\n".join(rows)
            groups.append((group.title or "arguments", table))
    return groups


def commands() -> list[tuple[tuple[str, ...], argparse.ArgumentParser, str]]:
    from trainlab.cli import build_parser

    return list(_subcommands(build_parser()))


def cli_reference() -> str:
    from trainlab.cli import build_parser

    parser = build_parser()
    parts = [
        "# Command line\n",
        GENERATED.format(source="trainlab's argparse parser (trainlab.cli.build_parser)"),
        "Every command and flag, as `trainlab COMMAND --help` prints them. The `train` flags",
        "are generated from `trainlab.config.TrainConfig`; `sweep`, `lr-find` and `cv` take",
        "them too. Precedence of settings: defaults < `--recipe` < `--config FILE.toml` < the",
        "saved run (on `--resume`) < the flags given.\n",
        "## trainlab\n",
        f"```text\n{parser.format_usage().strip()}\n```\n",
    ]
    for title, table in _flag_rows(parser):
        parts.append(f"**{title}**\n\n{table}\n")
    parts.append("| command | what |\n|---|---|")
    for words, _, text in commands():
        parts.append(f"| [`{' '.join(words)}`](#{'-'.join(words)}) | {cell(text or '')} |")
    parts.append("")
    for words, child, text in commands():
        name = " ".join(words)
        parts.append(f"## trainlab {name} {{ #{'-'.join(words)} }}\n")
        if child.description or text:
            parts.append(f"{child.description or text}\n")
        parts.append(f"```text\n{child.format_usage().strip()}\n```\n")
        for title, table in _flag_rows(child):
            parts.append(f"**{title}**\n\n{table}\n")
    return "\n".join(parts)


# ---------------------------------------------------------------- models and recipes


def models_reference() -> str:
    from trainlab.models import describe_models
    from trainlab.models.pretrained import LITE_PUBLISHED, describe_backbones

    lines = [
        "# Models\n",
        GENERATED.format(source="the model registry (trainlab.models.describe_models)"),
        "`trainlab models` prints the same. Parameter counts are for MNIST (10 classes);",
        "linreg's for 2 features. Options are the builder's keyword parameters: a flag each",
        "for the built-ins, or `--model-arg NAME=VALUE` for any model.\n",
        "| name | parameters | input | options | what |",
        "|---|---:|---|---|---|",
    ]
    for r in describe_models():
        params = f"{r['parameters']:,}" if r["parameters"] is not None else "-"
        options = ", ".join(f"`{k}={v}`" for k, v in r["options"].items()) or "-"
        lines.append(
            f"| `{r['name']}` | {params} | {cell(r['input'])} | {cell(options)} | "
            f"{cell(r['summary'])} |"
        )
    lines += [
        "",
        "## Pretrained backbones\n",
        "`--pretrained`, or `trainlab predict NAME photo.jpg` for ImageNet's classes. Parameters",
        f"with ImageNet's 1,000 classes; top-1 as published ({LITE_PUBLISHED}).\n",
        "| name | parameters | input | ImageNet top-1 (published) | weights |",
        "|---|---:|---|---:|---|",
    ]
    for r in describe_backbones():
        lines.append(
            f"| `{r['name']}` | {r['parameters']:,} | {cell(r['input'])} | "
            f"{r['imagenet_top1']}% | {cell(r['weights'])} |"
        )
    lines.append("\n`torchvision:NAME` takes any classification model torchvision lists.")
    return "\n".join(lines) + "\n"


def datasets_reference() -> str:
    from trainlab.data.registry import registered

    lines = [
        "# Datasets and the data root\n",
        GENERATED.format(source="the dataset registry (trainlab.data.registry)"),
        "`--dataset NAME` (or a path) picks one; `--data-arg NAME=VALUE` sets an option, and the",
        "options below have flags of their own too. The *kind* decides how inputs are read,",
        "which augmentations apply, the loss and metrics, and what predict and serve answer.\n",
        "| `--dataset` | kind | what | options |",
        "|---|---|---|---|",
    ]
    for spec in registered().values():
        options = ", ".join(f"`{name}`" for name in spec.options) or "-"
        lines.append(
            f"| `{spec.shown_as or spec.name}` | {spec.kind} | {cell(spec.summary)} | "
            f"{cell(options)} |"
        )
    lines += [
        "",
        "## The data root\n",
        "`--data-dir`, else `$TRAINLAB_DATA`, else `~/.cache/trainlab` (or",
        "`$XDG_CACHE_HOME/trainlab`). Files live in torchvision's layout, `ROOT/MNIST/raw/` (plain",
        "or `.gz`), so an existing torchvision download works as it is. An explicit root that does",
        "not exist is an error (a typo should not start a download somewhere unexpected);",
        "`trainlab data fetch` creates it. `trainlab data info NAME` prints counts, classes,",
        "mean/std, files and whether they are verified (`--verify` hashes every file again). Where",
        "each dataset comes from and what is checked: [What is verified]"
        "(../explanation/verification.md).\n",
        "Images are normalised with the training set's own mean and std unless `--norm-mean` and",
        "`--norm-std` say otherwise (one value, or one per channel; `--norm-mean 0 --norm-std 1`",
        "keeps images in [0, 1], as the d2l book does); the values used are kept in the",
        "checkpoint. `--subset`, `--test-subset` and `--val-split` are stratified draws seeded by",
        "`--data-seed` (default: `--seed`); a run records them, so evaluating or resuming it cuts",
        "the same images again.",
    ]
    return "\n".join(lines) + "\n"


def recipes_reference() -> str:
    from trainlab.recipes import RECIPES, command_for

    lines = [
        "# Recipes\n",
        GENERATED.format(source="trainlab.recipes.RECIPES"),
        "`trainlab recipes` prints the same. Any field can be overridden by a flag:",
        "`trainlab train --recipe seed-mlp --epochs 2`. What each recipe measured on this",
        "project's machine is in [Recipes, measured](../recipes.md).\n",
        "| recipe | from | what | the source claims | settings |",
        "|---|---|---|---|---|",
    ]
    for r in RECIPES.values():
        settings = ", ".join(f"`{k}={v}`" for k, v in r.settings.items())
        lines.append(
            f"| `{r.name}` | {cell(r.source)} | {cell(r.summary)} | {cell(r.claim)} | "
            f"{cell(settings)} |"
        )
    lines.append(f"\nRun one with `{command_for(next(iter(RECIPES.values())))}`.")
    return "\n".join(lines) + "\n"


def readme_with_headline(text: str) -> str:
    return HEADLINE.sub(lambda _: headline(), text)


# generated blocks inside pages that are otherwise written by hand (committed, checked current)
PICK = re.compile(r"<!-- BEGIN PICK -->.*<!-- END PICK -->", re.S)
BLOCKS = {"docs/how-to/small-data.md": (PICK, pick)}


def with_blocks(path: str, text: str) -> str:
    pattern, render = BLOCKS[path]
    return pattern.sub(lambda _: render(), text)


PAGES = {
    "docs/reference/cli.md": cli_reference,
    "docs/reference/models.md": models_reference,
    "docs/reference/recipes.md": recipes_reference,
    "docs/reference/datasets.md": datasets_reference,
    "docs/benchmarks/index.md": benchmark_latest,
    "docs/benchmarks/history.md": benchmark_history,
    "docs/benchmarks/transfer.md": benchmark_transfer,
    "docs/benchmarks/budget.md": benchmark_budget,
    "docs/benchmarks/d2l-book.md": benchmark_d2l,
    "docs/benchmarks/busy.md": benchmark_busy,
    "docs/benchmarks/log.md": benchmark_log,
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--check", action="store_true", help="only check README.md's table")
    args = parser.parse_args()
    readme = ROOT / "README.md"
    text = readme.read_text(encoding="utf-8")
    current = readme_with_headline(text)
    if args.check:
        if current != text:
            print("README.md's headline table is out of date: python scripts/docs_gen.py")
            return 1
        return 0
    if current != text:
        readme.write_text(current, encoding="utf-8")
    for name in BLOCKS:
        page = ROOT / name
        before = page.read_text(encoding="utf-8")
        if (after := with_blocks(name, before)) != before:
            page.write_text(after, encoding="utf-8")
    for name, render in PAGES.items():
        path = ROOT / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(render(), encoding="utf-8")
        print(f"wrote {name}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
