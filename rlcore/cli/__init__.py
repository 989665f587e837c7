"""The rlcore command line: train, eval, data, ablate, report.

``train <algo>`` and ``eval <algo>`` come from the algorithms' specs (:data:`rlcore.algorithm.ALGORITHMS`), ``data``
and the other evaluations from their entry-point groups (:mod:`rlcore.cli.registry`); only the one asked for is
imported. Bad input prints one line and exits with code 2 (``--debug`` shows the traceback); an exception raised
in user code (a reward function, a plugin) prints one line and the user's frames, exit code 1; a run stopped by a
NaN/inf exits with code 3; a training stopped by SIGINT / SIGTERM exits with code 130 / 143 once its checkpoint is
written, naming the command that resumes it.
"""

from __future__ import annotations

import argparse
import os
import sys
import warnings
from collections.abc import Callable

from rlcore import __version__
from rlcore.algorithm import ALGORITHMS
from rlcore.cli.commands import Command, train_command
from rlcore.cli.registry import DATA, EVALUATIONS
from rlcore.cli.user_code import user_frames
from rlcore.errors import NonFiniteError, Stopped, UserError
from rlcore.plugins import load_target

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


def _train(name: str) -> Command:
    return train_command(ALGORITHMS.get(name))


def _eval(name: str) -> Command:
    if name in EVALUATIONS:
        return EVALUATIONS.get(name)
    spec = ALGORITHMS.get(name)
    if spec.evaluate is None:
        raise UserError(f"{name} has no evaluation command of its own; load its policy with "
                        f"rlcore.load_policy(run_dir) (commands: {', '.join(_eval_names())})")
    return spec.evaluate


def _eval_names() -> list[str]:
    return sorted({*EVALUATIONS.names(), *ALGORITHMS.names()})


# group -> (help, names without importing, the command of one name)
GROUPS: dict[str, tuple[str, Callable[[], list[str]], Callable[[str], Command]]] = {
    "train": ("train an algorithm (rlcore train <algo> --help)", ALGORITHMS.names, _train),
    "eval": ("evaluate a trained policy or model", _eval_names, _eval),
    "data": ("make, mix and inspect datasets", DATA.names, DATA.get),
}


def build_parser(argv: list[str]) -> argparse.ArgumentParser:
    """The full parser; only the command named in ``argv`` is imported (a whole group for its --help)."""
    parser = OneLineParser(prog="rlcore", description=__doc__.split("\n\n")[0])
    parser.add_argument("--version", action="version", version=f"rlcore {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks for errors")
    top = parser.add_subparsers(dest="command", metavar="{" + ",".join([*GROUPS, *BUILTINS]) + "}")
    words = [a for a in argv if not a.startswith("-")]
    for group, (help_text, names_of, command_of) in GROUPS.items():
        names = names_of()
        help_text = f"{help_text}: {', '.join(names)}"
        group_parser = top.add_parser(group, help=help_text, description=help_text)
        group_parser.set_defaults(_parser=group_parser)
        if not words or words[0] != group:  # the top-level help needs the names only
            continue
        sub = group_parser.add_subparsers(dest="plugin", metavar="{" + ",".join(names) + "}")
        wanted = words[1] if len(words) > 1 and words[1] in names else None
        for name in names:
            if wanted is None or name == wanted:
                try:
                    _add_command(sub, name, command_of(name))
                except UserError as e:
                    if wanted is not None:
                        raise
                    sub.add_parser(name, help=f"(unavailable: {e})")
    for name, (target, help_text) in BUILTINS.items():
        if words and words[0] == name:
            _add_command(top, name, load_target(target))
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
    try:
        args = build_parser(argv).parse_args(argv)
        command: Command | None = getattr(args, "_command", None)
        if command is None:
            args._parser.print_help()
            return 2
        if getattr(args, "offline", False):  # --offline of train and data commands: every download path checks these
            os.environ["RLCORE_OFFLINE"] = os.environ["HF_HUB_OFFLINE"] = "1"
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
        if e.result.is_main:
            from rlcore.resume import stopped_message

            print(stopped_message(e.result.summary, e.signum, e.command), file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:  # before training started (nothing to resume) or after it ended
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as e:
        frames = user_frames(e)
        if debug or not frames:  # not raised by user code: a bug in rlcore, shown in full
            raise
        print(f"error: {type(e).__name__}: {e}", file=sys.stderr)
        print("".join(frames).rstrip("\n") + "\n(--debug shows the whole traceback)", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
