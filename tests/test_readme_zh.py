"""README.zh-CN.md keeps to what the CLI accepts: every command in its code blocks parses with
trainlab's own parser (a renamed flag fails here), its Python imports resolve, the two READMEs
link each other and start with the same commands, and the docs pages it names exist."""

from __future__ import annotations

import importlib
import re
import shlex
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
ZH = ROOT / "README.zh-CN.md"


def code_blocks(text: str) -> list[tuple[str, str]]:
    return re.findall(r"```(\w*)\n(.*?)```", text, flags=re.S)


def commands(text: str) -> list[str]:
    """The shell commands of the code blocks, comments dropped, continued lines joined."""
    found = []
    for lang, body in code_blocks(text):
        if lang not in ("sh", "bash", ""):
            continue
        for line in body.replace("\\\n", " ").splitlines():
            line = line.split("  #")[0].split(" # ")[0].strip()
            if line and not line.startswith("#"):
                found.append(line)
    return found


def parse_error(command: str) -> str | None:
    """Why trainlab's parser refuses ``command`` (None: it accepts it)."""
    import contextlib
    import io

    from trainlab.cli import build_parser

    words = shlex.split(command)
    if Path(words[0]).name != "trainlab":  # also .venv/bin/trainlab
        return None if words[0] == "make" else f"not a trainlab or make command: {command}"
    stderr = io.StringIO()
    try:
        with contextlib.redirect_stderr(stderr):
            _, extra = build_parser().parse_known_args(words[1:])
    except SystemExit:
        return stderr.getvalue().strip().splitlines()[-1]
    return f"unrecognized arguments: {extra}" if extra else None


ZH_COMMANDS = commands(ZH.read_text(encoding="utf-8"))


def test_the_chinese_readme_has_commands_to_check():
    assert len(ZH_COMMANDS) >= 20


@pytest.mark.parametrize("command", ZH_COMMANDS)
def test_each_command_parses_with_the_cli(command):
    assert parse_error(command) is None, f"README.zh-CN.md: {command}: {parse_error(command)}"


def test_make_targets_exist():
    makefile = (ROOT / "Makefile").read_text()
    for command in ZH_COMMANDS:
        if command.startswith("make "):
            target = command.split()[1]
            assert re.search(rf"^{target}:", makefile, flags=re.M), command


def test_a_renamed_flag_would_fail_this_test(monkeypatch):
    """What the drift test catches: the same check against a parser whose --val-split is
    renamed refuses the README's command naming it."""
    import trainlab.cli.flags as flags

    original = flags.flag_name
    monkeypatch.setattr(
        flags,
        "flag_name",
        lambda name: "--validation-split" if name == "val_split" else original(name),
    )
    uses = [c for c in ZH_COMMANDS if "--val-split" in c]
    assert uses and all(parse_error(c) for c in uses)


def test_the_python_blocks_import_what_exists():
    for lang, body in code_blocks(ZH.read_text(encoding="utf-8")):
        if lang != "python":
            continue
        for module, names in re.findall(r"^from ([\w.]+) import ([\w, ]+)", body, flags=re.M):
            loaded = importlib.import_module(module)
            for name in (n.strip() for n in names.split(",")):
                assert hasattr(loaded, name) or importlib.util.find_spec(f"{module}.{name}"), (
                    f"from {module} import {name}"
                )


def test_the_readmes_link_each_other_and_render_as_plain_text():
    zh = ZH.read_text(encoding="utf-8")
    en = (ROOT / "README.md").read_text(encoding="utf-8")
    assert zh.splitlines()[0] == "[English](README.md) | 简体中文"
    assert "English | [简体中文](README.zh-CN.md)" in en.splitlines()[:4]
    assert "![" not in zh and "<img" not in zh  # nothing a terminal cannot show
    # the English pages it sends readers to exist, each under the title it gives
    pages = re.findall(r"\[([^\]]+)\]\((docs/[^)]+\.md)\)", zh.split("## 其余内容")[1])
    assert len(pages) >= 15
    for title, page in pages:
        assert (ROOT / page).is_file(), page
        if page == "docs/index.md":
            continue
        assert title.lower() in (ROOT / page).read_text(encoding="utf-8").splitlines()[0].lower()


def test_the_chinese_readme_keeps_the_english_ones_first_commands():
    """Kept in step: the install and first-run commands are the English README's."""
    first = [c for c in commands((ROOT / "README.md").read_text(encoding="utf-8"))][:2]
    assert first == ZH_COMMANDS[:2]
