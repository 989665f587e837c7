"""``rlcore train g2rl``: the G2RL preset of GRPO (``shaper=g2rl`` with its settings as config keys)."""

from __future__ import annotations

import argparse

from rlcore.algorithms.g2rl.config import G2RLConfig
from rlcore.cli.commands import Command, add_train_arguments, config_from_args


def _configure(parser: argparse.ArgumentParser) -> None:
    add_train_arguments(parser, G2RLConfig)


def _run(args: argparse.Namespace) -> int:
    from rlcore.algorithms.grpo.cli import report
    from rlcore.algorithms.grpo.launch import train

    cfg = config_from_args(G2RLConfig, args, algo="g2rl")
    result = train(cfg, algo="g2rl", run_dir=args.run_dir, resume=args.resume)
    report(result)
    return 0


TRAIN = Command(help="G2RL: GRPO with gradient-guided reward shaping (rlcore train g2rl --help)",
                configure=_configure, run=_run)
