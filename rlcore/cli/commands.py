"""What a plugin subcommand is, and the arguments every ``rlcore train <algo>`` shares.

Algorithms and data tools register a :class:`Command` under an entry-point group in ``pyproject.toml``
(``rlcore.train``, ``rlcore.eval``, ``rlcore.data``); ``rlcore`` finds them there and imports only the one asked
for. Plugin modules should import heavy libraries inside ``run`` so that ``--help`` stays fast.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from rlcore.config import load_config
from rlcore.config_docs import describe
from rlcore.run import saved_config_path

C = TypeVar("C")


@dataclass(frozen=True)
class Command:
    """A subcommand: one-line help, a function adding its arguments, and a function running it."""

    help: str
    configure: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int | None]


class ListConfigAction(argparse.Action):
    """``--list-config``: print every config key with type, default and documentation, then exit."""

    def __init__(self, option_strings: list[str], config_cls: type, **kwargs: Any):
        super().__init__(option_strings, nargs=0, help="list every config key (type, default, meaning) and exit",
                         **kwargs)
        self.config_cls = config_cls

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: Any,
                 option_string: str | None = None) -> None:
        rows = describe(self.config_cls)
        width = max(len(r[0]) for r in rows)
        for key, tp, default, doc in rows:
            sys.stdout.write(f"{key:<{width}}  {tp} = {default}\n{'':<{width}}  {doc}\n")
        parser.exit(0)


def add_train_arguments(parser: argparse.ArgumentParser, config_cls: type) -> None:
    """Arguments shared by every training command."""
    parser.add_argument("--config", metavar="YAML", help="preset to start from (see configs/)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config key, e.g. --set max_steps=1000 (repeatable)")
    parser.add_argument("--run-dir", metavar="DIR", help="output directory (default runs/<algo>-<task>-<time>)")
    parser.add_argument("--resume", action="store_true",
                        help="continue the run in --run-dir from its latest checkpoint (uses its saved config)")
    parser.add_argument("--seed", type=int, help="random seed (config key seed)")
    parser.add_argument("--device", help="auto, cpu, cuda, cuda:N or mps (config key device)")
    parser.add_argument("--offline", action="store_true", help="never touch the network: no dataset download "
                        "(sets RLCORE_OFFLINE=1 and HF_HUB_OFFLINE=1 for the run)")
    parser.add_argument("--list-config", action=ListConfigAction, config_cls=config_cls)


def config_from_args(config_cls: type[C], args: argparse.Namespace, algo: str,
                     values: dict[str, Any] | None = None) -> C:
    """Resolve the config for a training command.

    Order: dataclass defaults <- ``--config`` preset (or, with ``--resume``, the run's saved config.yaml) <-
    typed flags (``values`` plus ``--seed``/``--device``) <- ``--set`` overrides.
    """
    preset: str | Path | None = args.config
    if args.resume:
        if not args.run_dir:
            from rlcore.errors import UserError

            raise UserError("--resume needs --run-dir pointing at the run to continue")
        if Path(args.run_dir, "config.yaml").exists():
            preset = saved_config_path(args.run_dir)
    flags = {k: v for k, v in (values or {}).items() if v is not None}
    if args.seed is not None:
        flags["seed"] = args.seed
    if args.device is not None:
        flags["device"] = args.device
    return load_config(config_cls, preset, overrides=args.overrides, values=flags, algo=algo)
