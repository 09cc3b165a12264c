"""Command line: ``trainlab train | eval | report | compare | predict | export | serve | data |
models | recipes | sweep | lr-find | cv`` (also ``python -m trainlab``).

Thin by design: it parses, builds a ``TrainConfig``, and calls the functions the Python API
exposes (``trainlab.workflow``). The ``train`` flags are generated from ``TrainConfig``'s fields,
so the two never drift apart. One module per family of commands, each with ``add(sub)`` (its
parsers, each with its handler as ``func``); this one builds the parser, dispatches, and turns
errors into messages for people.

Example:
    >>> from trainlab.cli import main
    >>> main(["eval", "runs/<id>/best.pt"])
"""

from __future__ import annotations

import argparse
import errno
import os
import sys

from trainlab.cli import catalog, evaluate, train, use
from trainlab.cli.common import err, trust_flag
from trainlab.cli.flags import add_config_flags, as_flags, given_settings
from trainlab.errors import ConfigError, TrainlabError

__all__ = ["add_config_flags", "build_parser", "given_settings", "main", "subcommand_parser"]

EXAMPLES = """examples:
  trainlab train                                   # default CNN on MNIST, >= 99% in 1 epoch
  trainlab train --model mlp --epochs 5 --optimizer adam --lr 0.01 --batch-size 64
  trainlab train --recipe seed-mlp --epochs 2      # a seed's recipe, a field overridden
  trainlab train --resume runs/<id> --epochs 4     # continue a run (or an interrupted one)
  trainlab eval runs/<id>/best.pt                  # accuracy, per-class P/R/F1, confusion matrix
  trainlab data fetch mnist                        # into $TRAINLAB_DATA or the user cache
  trainlab models                                  # registry, parameters, expected input
"""

# commands whose workers rerun the command's own arguments: they get them, and the settings
TUNING = ("sweep", "lr-find", "cv")


def _version() -> str:
    from trainlab import __version__

    return __version__


def _build() -> tuple[argparse.ArgumentParser, dict[str, argparse.ArgumentParser]]:
    """The parser, and each command's own parser by its words (``"train"``, ``"data fetch"``)."""
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
    commands: dict[str, argparse.ArgumentParser] = {}
    for module in (train, evaluate, use, catalog):
        commands.update(module.add(sub))
    from trainlab.tune import commands as tune

    tune.add_parsers(sub, add_config_flags, trust_flag)
    for name, handler in zip(TUNING, (tune.cmd_sweep, tune.cmd_lr_find, tune.cmd_cv), strict=True):
        commands[name] = sub.choices[name]
        commands[name].set_defaults(func=handler)
    return parser, commands


def build_parser() -> argparse.ArgumentParser:
    """The ``trainlab`` parser, every command included."""
    return _build()[0]


def subcommand_parser(*words: str) -> argparse.ArgumentParser:
    """The parser of one command: ``subcommand_parser("train")``,
    ``subcommand_parser("data", "fetch")``."""
    return _build()[1][" ".join(words)]


def _refuse_unknown(
    parser: argparse.ArgumentParser,
    commands: dict[str, argparse.ArgumentParser],
    args: argparse.Namespace,
    extra: list[str],
) -> None:
    """Unknown arguments get the usage of the command they were given to, and a did-you-mean
    (argparse would print the top level's usage)."""
    import difflib
    import re

    command = parser
    if args.command is not None:
        words = [args.command, *filter(None, [getattr(args, "data_command", None)])]
        command = commands[" ".join(words)]
    # the command's flags as its usage line names them (argparse has no public list of them)
    options = re.findall(r"(?<![\w-])--?[A-Za-z][\w-]*", command.format_usage())
    hints = []
    for item in extra:
        close = difflib.get_close_matches(item.split("=")[0], options, n=1, cutoff=0.6)
        if item.startswith("-") and close:
            hints.append(f"{item}: did you mean {close[0]}?")
    command.error(f"unrecognized arguments: {' '.join(extra)}" + "".join(f"; {h}" for h in hints))


def _refuse_unknown_command(
    parser: argparse.ArgumentParser, commands: dict[str, argparse.ArgumentParser], argv: list[str]
) -> None:
    """A misspelt command gets a did-you-mean (argparse lists the choices only)."""
    import difflib

    words = [w for w in argv if not w.startswith("-")]  # the top level's flags take no value
    names = [name for name in commands if " " not in name]
    if not words or words[0] in names:
        return
    close = difflib.get_close_matches(words[0], names, n=1, cutoff=0.6)
    if close:
        parser.error(
            f"argument COMMAND: invalid choice: {words[0]!r}; did you mean {close[0]}? "
            f"(choose from {', '.join(names)})"
        )


def main(argv: list[str] | None = None) -> int:
    parser, commands = _build()
    from_process = argv is None  # the trainlab command itself: a --budget counts from its start
    argv = list(sys.argv[1:] if argv is None else argv)
    _refuse_unknown_command(parser, commands, argv)
    args, extra = parser.parse_known_args(argv)
    if extra:
        _refuse_unknown(parser, commands, args, extra)
    if args.command is None:
        parser.print_help()
        return 2
    from trainlab.engine.budget import clock
    from trainlab.logs import to_stderr

    try:  # trainlab's lines on stderr for the command: warnings only with --quiet
        quiet = getattr(args, "quiet", False)
        with to_stderr(quiet=quiet, verbose=args.verbose), clock(from_process):
            if args.command in TUNING:  # the sweep's workers rerun its own arguments
                rest = argv[argv.index(args.command) + 1 :]
                return args.func(args, rest, given_settings(args))
            return args.func(args)
    except TrainlabError as e:
        if args.debug:
            raise
        message = str(e)
        if args.command == "train" and isinstance(e, ConfigError):
            message = as_flags(message)
        rank = os.environ.get("RANK") if "WORLD_SIZE" in os.environ else None
        err(f"error{f' (rank {rank})' if rank is not None else ''}: {message}")
        return e.exit_code
    except KeyboardInterrupt:
        if args.debug:
            raise
        err("aborted.")
        return 130
    except BrokenPipeError:  # `trainlab ... | head`: the reader left; stop quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except OSError as e:  # the machine's side: disk full, permissions, a folder gone
        if args.debug:
            raise
        err(f"error: {os_error_message(e)}")
        return 1


# what to do about the machine's refusals, by errno: only a full disk talks about disk space
OS_ADVICE = {
    errno.ENOSPC: "The disk is full: free some space, or write somewhere else.",
    errno.EDQUOT: "Your disk quota is used up: free some space, or write somewhere else.",
    errno.ENOENT: "A folder on this path does not exist: check the path, or create the folder.",
    errno.ENOTDIR: "A part of this path is a file, not a folder: check the path.",
    errno.EEXIST: "A file is in the way where a folder is wanted: move it, or choose another path.",
    errno.EISDIR: "This path is a folder where a file is wanted: choose a file's path.",
    errno.EACCES: "Check the folder's permissions, or write somewhere else.",
    errno.EPERM: "Check the folder's permissions, or write somewhere else.",
    errno.EROFS: "The file system is read-only: write somewhere else.",
}


def os_error_message(e: OSError) -> str:
    """What went wrong, on which path, and what to do, for an ``OSError``."""
    where = f" ({e.filename})" if e.filename else ""
    advice = OS_ADVICE.get(e.errno, "Check the path and the folder's permissions.")
    return f"{e.strerror or e}{where}. {advice}"
