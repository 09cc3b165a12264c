"""The documentation cannot go stale: every ``trainlab`` command in README.md, README.zh-CN.md and
the docs' tutorials and how-to guides parses with the CLI's own parser; every Python snippet
compiles and its imports resolve, and those marked ``<!-- runnable -->`` run on small data; the
generated reference names every command and flag; and no measured figure ("5.13×", "99.19%") is
typed into a Markdown file outside a block a script writes from benchmarks/results/."""

from __future__ import annotations

import argparse
import ast
import contextlib
import importlib
import io
import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))

import docs_benchmarks  # noqa: E402
import docs_gen  # noqa: E402

# the pages whose commands and snippets people copy: the READMEs and every page of the site
PAGES = [ROOT / "README.md", ROOT / "README.zh-CN.md", *sorted((ROOT / "docs").rglob("*.md"))]
FENCE = re.compile(r"(<!-- runnable -->\n)?```(\w*)\n(.*?)```", re.S)


def blocks(path: Path) -> list[tuple[str, str, bool]]:
    """(language, code, marked runnable) of each fenced block."""
    text = path.read_text(encoding="utf-8")
    return [(lang, body, bool(mark)) for mark, lang, body in FENCE.findall(text)]


def shell_lines(body: str) -> list[str]:
    """A shell block's commands: comments dropped, continued lines joined, ``&&`` split."""
    found = []
    for line in body.replace("\\\n", " ").splitlines():
        line = line.split("  #")[0].split(" # ")[0].strip()
        if line and not line.startswith("#"):
            found += [part.strip() for part in line.split("&&") if part.strip()]
    return found


def trainlab_words(command: str) -> list[str] | None:
    """The arguments given to trainlab (after ``trainlab``, ``.venv/bin/trainlab``,
    ``python -m trainlab`` or ``torchrun ... -m trainlab``), or None for another program."""
    words = shlex.split(command)
    while words and re.fullmatch(r"[A-Z_][A-Z0-9_]*=.*", words[0]):  # VAR=value prefixes
        words.pop(0)
    if not words:
        return None
    if Path(words[0]).name == "trainlab":
        return words[1:]
    if "-m" in words and words.index("-m") + 1 < len(words):
        at = words.index("-m")
        if words[at + 1] == "trainlab":
            return words[at + 2 :]
    return None


def parse_error(words: list[str]) -> str | None:
    """Why trainlab's parser refuses ``words`` (None: it accepts them)."""
    from trainlab.cli import build_parser

    stderr = io.StringIO()
    try:
        with contextlib.redirect_stderr(stderr):
            _, extra = build_parser().parse_known_args(words)
    except SystemExit:
        return stderr.getvalue().strip().splitlines()[-1]
    return f"unrecognized arguments: {extra}" if extra else None


def all_commands() -> list[tuple[str, str]]:
    found = []
    for page in PAGES:
        for lang, body, _ in blocks(page):
            if lang in ("sh", "bash", ""):
                found += [(page.relative_to(ROOT).as_posix(), c) for c in shell_lines(body)]
    return found


COMMANDS = all_commands()
TRAINLAB = [(page, c) for page, c in COMMANDS if trainlab_words(c) is not None]


def test_the_readme_is_a_door_not_a_house():
    """At most 150 lines, and every page it links to is there (on GitHub, before a build)."""
    for name in ("README.md", "README.zh-CN.md"):
        text = (ROOT / name).read_text(encoding="utf-8")
        for target in re.findall(r"\]\(([^)#:]+)(?:#[^)]*)?\)", text):
            assert (ROOT / target).exists(), f"{name} links to {target}, which is not there"
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert len(readme.splitlines()) <= 150
    for page in ("docs/tutorials/own-images.md", "docs/how-to/export.md", "docs/how-to/resume.md"):
        assert f"]({page})" in readme  # a CSV of labels, the browser, a resume: one click away


def test_the_pages_have_commands_to_check():
    pages = {page for page, _ in TRAINLAB}
    assert len(TRAINLAB) >= 80 and {"README.md", "README.zh-CN.md"} <= pages
    assert all(p.relative_to(ROOT).as_posix() in pages for p in PAGES if "tutorials" in str(p))


@pytest.mark.parametrize(("page", "command"), TRAINLAB, ids=[f"{p}: {c}" for p, c in TRAINLAB])
def test_each_command_parses_with_the_cli(page, command):
    problem = parse_error(trainlab_words(command))
    assert problem is None, f"{page}: {command}: {problem}"


def test_a_misspelt_flag_in_a_page_would_fail():
    assert parse_error(["train", "--val-splt", "0.1"])
    assert parse_error(["predict", "runs/x", "a.png", "--csv-colums", "id"])


def test_make_targets_named_in_the_pages_exist():
    makefile = (ROOT / "Makefile").read_text()
    for page, command in COMMANDS:
        if command.startswith("make "):
            target = command.split()[1]
            assert re.search(rf"^{target}:", makefile, flags=re.M), f"{page}: {command}"


# ---------------------------------------------------------------- Python snippets

SNIPPETS = [
    (page.relative_to(ROOT).as_posix(), body, runnable)
    for page in PAGES
    for lang, body, runnable in blocks(page)
    if lang == "python"
]


def imported_names(code: str) -> list[tuple[str, str | None]]:
    """(module, name) for each ``from module import name``, (module, None) for ``import module``."""
    found = []
    for node in ast.walk(ast.parse(code)):
        if isinstance(node, ast.Import):
            found += [(alias.name, None) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            found += [(node.module, alias.name) for alias in node.names]
    return found


def test_there_are_snippets_and_some_run():
    assert len(SNIPPETS) >= 5 and any(runnable for *_, runnable in SNIPPETS)


@pytest.mark.parametrize(
    ("page", "code"), [(page, code) for page, code, _ in SNIPPETS], ids=[s[0] for s in SNIPPETS]
)
def test_each_snippet_compiles_and_imports_what_exists(page, code):
    compile(code, page, "exec")
    for module, name in imported_names(code):
        loaded = importlib.import_module(module)
        if name is not None:
            assert hasattr(loaded, name) or importlib.util.find_spec(f"{module}.{name}"), (
                f"{page}: from {module} import {name}"
            )


RUNNABLE = [
    pytest.param(page, code, marks=[pytest.mark.slow] if ".fit(" in code else [], id=page)
    for page, code, runnable in SNIPPETS
    if runnable
]


@pytest.mark.parametrize(("page", "code"), RUNNABLE)
def test_each_runnable_snippet_runs(page, code, tmp_path, mnist_root):
    env = {**os.environ, "TRAINLAB_DATA": str(mnist_root), "MPLBACKEND": "Agg"}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "src"), env.get("PYTHONPATH", "")])
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True,
        timeout=1800, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, f"{page}:\n{proc.stderr}"


# ---------------------------------------------------------------- generated reference


def test_every_command_and_flag_is_in_the_generated_reference():
    reference = docs_gen.cli_reference()
    commands = docs_gen.commands()
    names = {" ".join(words) for words, _, _ in commands}
    assert {"train", "eval", "predict", "export", "serve", "calibrate", "data fetch"} <= names
    for words, parser, _ in commands:
        assert f"## trainlab {' '.join(words)} " in reference, words
        section = reference.split(f"## trainlab {' '.join(words)} ")[1].split("\n## ")[0]
        for action in parser._actions:
            if action.help == argparse.SUPPRESS:  # hidden from --help: the workers' own
                continue
            for option in action.option_strings:
                if option not in ("-h", "--help"):
                    assert f"`{option}`" in section, f"trainlab {' '.join(words)} {option}"


def test_the_reference_would_miss_a_new_flag(monkeypatch):
    """What the check above catches: a parser with one more flag than the reference shows."""
    import trainlab.cli as cli

    built = cli._build

    def with_flag():
        parser, commands = built()
        commands["eval"].add_argument("--brand-new", help="x")
        return parser, commands

    reference = docs_gen.cli_reference()
    monkeypatch.setattr(cli, "_build", with_flag)
    assert "`--brand-new`" not in reference
    assert "`--brand-new`" in docs_gen.cli_reference()


def test_the_models_recipes_and_datasets_tables_name_every_entry():
    from trainlab.data.registry import registered
    from trainlab.models import describe_models
    from trainlab.recipes import RECIPES

    models, recipes = docs_gen.models_reference(), docs_gen.recipes_reference()
    datasets = docs_gen.datasets_reference()
    assert all(f"`{r['name']}`" in models for r in describe_models())
    assert all(f"`{name}`" in recipes for name in RECIPES)
    assert all(f"`{s.shown_as or s.name}`" in datasets for s in registered().values())


def test_the_readme_headline_table_is_current():
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "<!-- BEGIN HEADLINE -->" in text
    assert docs_gen.readme_with_headline(text) == text, "run: python scripts/docs_gen.py"


def test_the_generated_blocks_of_hand_written_pages_are_current():
    for name in docs_gen.BLOCKS:
        text = (ROOT / name).read_text(encoding="utf-8")
        assert docs_gen.with_blocks(name, text) == text, "run: python scripts/docs_gen.py"


def test_the_benchmarks_readme_table_is_current():
    import bench

    latest = docs_benchmarks.dated_results()[-1]
    data = json.loads(latest.read_text())
    meta = {k: v for k, v in data.items() if k != "results"}
    text = (ROOT / "benchmarks" / "README.md").read_text(encoding="utf-8")
    assert bench.results_block(data["results"], meta) in text, "run: make bench"


def test_every_results_file_renders():
    for render in docs_gen.PAGES.values():
        assert "\n|" in render()


# ---------------------------------------------------------------- no figure typed by hand

FIGURE = re.compile(
    r"\d+\.\d+\s?%"  # 99.19%
    r"|\d+\.\d+\s?×"  # 5.13×
    r"|\b\d+\.\d+x\b"  # 43.4x
    r"|\d+\.\d+\s?倍"  # 5.13 倍
    r"|\d[\d,]*(?:\.\d+)?\s?(?:img/s|images/s|req/s|requests/s)"  # 1,316 img/s
    r"|\b\d+\.\d+\s?(?:s|ms|seconds)\b"  # 15.2 s
)
GENERATED_BLOCK = re.compile(r"<!-- BEGIN (\w+) -->.*?<!-- END \1 -->", re.S)
# sizes and shapes are not measurements
NOT_A_FIGURE = re.compile(r"\d+\s?×\s?\d+")


def figures(text: str) -> list[str]:
    text = GENERATED_BLOCK.sub("", text)
    text = NOT_A_FIGURE.sub("", text)
    return [m.group(0) for m in FIGURE.finditer(text)]


def markdown_files() -> list[Path]:
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "*.md"],
        cwd=ROOT, capture_output=True, text=True, check=True,
    ).stdout.split()  # fmt: skip
    return [ROOT / name for name in listed if not name.startswith("tests/")]


def test_the_figure_finder_finds_figures():
    text = "reached 99.19% at 5.13× the peer, 43.4x, 1,316 img/s, 15.2 s, 6.13 倍"
    assert figures(text) == ["99.19%", "5.13×", "43.4x", "1,316 img/s", "15.2 s", "6.13 倍"]
    assert figures("<!-- BEGIN X -->\n99.19%\n<!-- END X -->\n28×28, 3×224×224, 99%") == []


def test_no_measured_figure_is_typed_into_markdown():
    files = markdown_files()
    assert ROOT / "README.md" in files and ROOT / "docs" / "tutorials" / "first-run.md" in files
    typed = {
        path.relative_to(ROOT).as_posix(): found
        for path in files
        if (found := figures(path.read_text(encoding="utf-8")))
    }
    assert not typed, (
        f"measured figures outside generated blocks (put them in benchmarks/results/): {typed}"
    )
