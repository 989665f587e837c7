"""``rlcore train g2rl``: GRPO with G2RL reward shaping (or the EVOL-style baseline) through the trainer's hook."""

from __future__ import annotations

import argparse

from rlcore.algorithms.g2rl.config import G2RLConfig
from rlcore.cli.commands import Command, add_train_arguments, config_from_args


def _configure(parser: argparse.ArgumentParser) -> None:
    add_train_arguments(parser, G2RLConfig)


def _run(args: argparse.Namespace) -> int:
    from rlcore.algorithms.g2rl.shaping import make_shaper
    from rlcore.algorithms.grpo.cli import report
    from rlcore.algorithms.grpo.trainer import train

    cfg = config_from_args(G2RLConfig, args, algo="g2rl")
    result = train(cfg, algo="g2rl", run_dir=args.run_dir, resume=args.resume, make_shaper=make_shaper)
    report(result)
    return 0


TRAIN = Command(help="G2RL: GRPO with gradient-guided reward shaping (rlcore train g2rl --help)",
                configure=_configure, run=_run)
