"""The rlcore command line: train, eval, data, ablate, report.

``train``, ``eval`` and ``data`` dispatch to the commands of :mod:`rlcore.cli.registry` (built-ins, then
third-party entry points), importing only the one asked for. User errors print one line and exit with
code 2 (``--debug`` shows the traceback); a run stopped by a NaN/inf exits with code 3; a training stopped by
SIGINT / SIGTERM exits with code 130 / 143 once its checkpoint is written, naming the command that resumes it.
"""

from __future__ import annotations

import argparse
import os
import sys
import warnings

from rlcore import __version__
from rlcore.cli.commands import Command
from rlcore.cli.registry import load, targets
from rlcore.errors import NonFiniteError, Stopped, UserError

GROUPS = {
    "train": "train an algorithm (rlcore train <algo> --help)",
    "eval": "evaluate a trained policy or model",
    "data": "make, mix and inspect datasets",
}
BUILTINS = {
    "ablate": ("rlcore.sweep.cli:COMMAND", "run a sweep of configs x seeds from a spec YAML"),
    "report": ("rlcore.report.cli:COMMAND", "tables and plots from a folder of runs"),
    "vllm-serve": ("rlcore.rollout.server:COMMAND", "serve generation with vLLM for vllm_mode=server trainers"),
}


class OneLineParser(argparse.ArgumentParser):
    """argparse with a one-line error that points at --help."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message}; see `{self.prog} --help`\n")


def _add_command(subparsers: argparse._SubParsersAction, name: str, command: Command) -> None:
    p = subparsers.add_parser(name, help=command.help, description=command.help)
    command.configure(p)
    p.set_defaults(_command=command)


def build_parser(argv: list[str]) -> argparse.ArgumentParser:
    """The full parser; only the plugin named in ``argv`` is imported (a whole group for its --help)."""
    parser = OneLineParser(prog="rlcore", description=__doc__.split("\n\n")[0])
    parser.add_argument("--version", action="version", version=f"rlcore {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks for errors")
    top = parser.add_subparsers(dest="command", metavar="{" + ",".join([*GROUPS, *BUILTINS]) + "}")
    words = [a for a in argv if not a.startswith("-")]
    for name, help_text in GROUPS.items():
        help_text = f"{help_text}: {', '.join(sorted(targets(name)))}"
        group_parser = top.add_parser(name, help=help_text, description=help_text)
        group_parser.set_defaults(_parser=group_parser)
        if words and words[0] != name:
            continue
        plugins = targets(name)
        sub = group_parser.add_subparsers(dest="plugin", metavar="{" + ",".join(sorted(plugins)) + "}")
        wanted = words[1] if len(words) > 1 and words[1] in plugins else None
        for plugin_name, target in sorted(plugins.items()):
            if wanted is None or plugin_name == wanted:
                _add_command(sub, plugin_name, load(target))
    for name, (target, help_text) in BUILTINS.items():
        if words and words[0] == name:
            _add_command(top, name, load(target))
        else:
            top.add_parser(name, help=help_text)
    parser.set_defaults(_parser=parser)
    return parser


def _one_line_warning(message, category, filename, lineno, line=None) -> str:  # noqa: ANN001
    return f"warning: {message} [{category.__name__}]\n"


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    warnings.formatwarning = _one_line_warning  # users see the message, not the library's source line
    debug = "--debug" in argv  # accepted anywhere on the line, not only before the subcommand
    argv = [a for a in argv if a != "--debug"]
    args = build_parser(argv).parse_args(argv)
    command: Command | None = getattr(args, "_command", None)
    if command is None:
        args._parser.print_help()
        return 2
    if getattr(args, "offline", False):  # --offline of train and data commands: every download path checks these
        os.environ["RLCORE_OFFLINE"] = os.environ["HF_HUB_OFFLINE"] = "1"
    try:
        return int(command.run(args) or 0)
    except UserError as e:
        if debug:
            raise
        print(f"error: {e}", file=sys.stderr)
        return 2
    except NonFiniteError as e:
        if debug:
            raise
        print(f"error: training stopped: {e}", file=sys.stderr)
        return 3
    except Stopped as e:  # a stop signal during training: checkpoint and summary are written
        if str(e):
            print(f"{e}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:  # before training started (nothing to resume) or after it ended
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
