"""What a subcommand is, and ``rlcore train <algo>`` derived from an algorithm's spec.

Data tools and evaluations register a :class:`Command` under an entry-point group in ``pyproject.toml``
(``rlcore.data``, ``rlcore.eval``); algorithms register an :class:`rlcore.algorithm.AlgorithmSpec`
(``rlcore.algorithms``), from which :func:`train_command` makes the command. Plugin modules should import heavy
libraries inside ``run`` so that ``--help`` stays fast.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from rlcore.config_docs import describe

if TYPE_CHECKING:
    from rlcore.algorithm import AlgorithmSpec
    from rlcore.api import RunResult


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
    from rlcore.resume import resumable_keys_text

    parser.add_argument("--config", metavar="YAML", help="preset to start from (see configs/)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config key, e.g. --set max_steps=1000 (repeatable)")
    parser.add_argument("--run-dir", metavar="DIR", help="output directory (default runs/<algo>-<task>-<time>)")
    parser.add_argument("--resume", action="store_true",
                        help="continue the run in --run-dir from its latest checkpoint (uses its saved config; --set "
                        f"may change {resumable_keys_text()})")
    parser.add_argument("--force-config", action="store_true",
                        help="with --resume: accept --set changes to the experiment itself (e.g. lam), which "
                        "config.yaml and meta.json then record")
    parser.add_argument("--seed", type=int, help="random seed (config key seed)")
    parser.add_argument("--device", help="auto, cpu, cuda, cuda:N or mps (config key device)")
    parser.add_argument("--offline", action="store_true", help="never touch the network: no dataset download "
                        "(sets RLCORE_OFFLINE=1 and HF_HUB_OFFLINE=1 for the run)")
    parser.add_argument("--list-config", action=ListConfigAction, config_cls=config_cls)


def config_from_args(spec: AlgorithmSpec, args: argparse.Namespace) -> Any:
    """The config of ``rlcore train <spec.name>``: dataclass defaults <- ``--config`` preset (with ``--resume``, the
    run's saved config.yaml) <- the spec's flags and ``--seed``/``--device`` <- ``--set`` overrides."""
    from rlcore.config import load_config
    from rlcore.resume import saved_config

    flags = {f.key: getattr(args, _dest(f.key)) for f in spec.flags}
    flags.update(seed=args.seed, device=args.device)
    values = {k: v for k, v in flags.items() if v is not None}
    preset = saved_config(args.run_dir, spec.name) if args.resume else args.config
    return load_config(spec.config, preset, overrides=args.overrides, values=values, algo=spec.name)


def _dest(key: str) -> str:
    return f"config_{key.replace('.', '_')}"


def closing_line(result: RunResult) -> str:
    """What a training prints when it ends, unless its spec says otherwise."""
    return f"{result.status} at step {result.summary.get('step')} -> {result.run_dir}"


def train_command(spec: AlgorithmSpec) -> Command:
    """``rlcore train <spec.name>``: parse, build the config, call :func:`rlcore.train`, print the closing line."""

    def configure(parser: argparse.ArgumentParser) -> None:
        add_train_arguments(parser, spec.config)
        for f in spec.flags:
            parser.add_argument(f.flag, dest=_dest(f.key), help=f"{f.help} (config key {f.key})")
        if spec.examples:
            parser.epilog = f"examples: {spec.examples}"

    def run(args: argparse.Namespace) -> int:
        from rlcore.api import train

        cfg = config_from_args(spec, args)
        result = train(cfg, run_dir=args.run_dir, resume=args.resume, force_config=args.force_config)
        if result.is_main:
            print((spec.describe or closing_line)(result))
        return 0

    return Command(help=spec.help, configure=configure, run=run)

