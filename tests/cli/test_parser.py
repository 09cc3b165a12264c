"""trainlab.cli's parser: each command's own parser by name, and did-you-mean for a misspelt
command or flag, read from public argparse only."""

from __future__ import annotations

import pytest

from helpers import run_here
from trainlab.cli import build_parser, subcommand_parser


def test_each_command_has_its_parser_and_handler():
    top = build_parser()
    for words in (["train"], ["eval"], ["predict"], ["serve"], ["data", "fetch"], ["cv"]):
        parser = subcommand_parser(*words)
        assert parser.prog == "trainlab " + " ".join(words)
        assert callable(parser.get_default("func")) or words == ["data", "fetch"]
    args = top.parse_args(["data", "info", "mnist"])
    assert args.func.__name__ == "cmd_data" and args.data_command == "info"


@pytest.mark.parametrize(
    ("argv", "needles"),
    [
        (["trian"], ["invalid choice: 'trian'; did you mean train?"]),
        (["--debug", "modles"], ["did you mean models?"]),
        (
            ["predict", "RUN", "x.png", "--top-kk", "3"],
            ["trainlab predict", "did you mean --top-k?"],
        ),
        (["data", "info", "mnist", "--jsn"], ["trainlab data info", "did you mean --json?"]),
        (["train", "--epohcs", "2"], ["trainlab train", "did you mean --epochs?"]),
    ],
)
def test_a_misspelt_command_or_flag_gets_a_did_you_mean(argv, needles, tmp_path):
    proc = run_here(*argv, cwd=tmp_path)  # were it accepted, its run would go there
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    for needle in needles:
        assert needle in proc.stderr, proc.stderr
