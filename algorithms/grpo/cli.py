"""``rlcore train grpo``: GRPO with verifiable math rewards (plain group-normalised advantages)."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from rlcore.algorithms.grpo.config import GRPOConfig
from rlcore.cli.commands import Command, add_train_arguments, config_from_args

if TYPE_CHECKING:
    from rlcore.algorithms.grpo.trainer import TrainResult


def _configure(parser: argparse.ArgumentParser) -> None:
    add_train_arguments(parser, GRPOConfig)


def report(result: TrainResult) -> None:
    """One line with the final evaluation and the run directory, printed by the main process."""
    if not result.trainer.dist.is_main:
        return
    last = (result.summary.get("last") or {}).get("metrics", {})
    shown = ", ".join(f"{k.removeprefix('eval/')} {v:.2f}" for k, v in last.items() if k.startswith("eval/pass"))
    print(f"{shown or 'no evaluation'} -> {result.run_dir}")


def _run(args: argparse.Namespace) -> int:
    from rlcore.algorithms.grpo.trainer import train

    cfg = config_from_args(GRPOConfig, args, algo="grpo")
    report(train(cfg, algo="grpo", run_dir=args.run_dir, resume=args.resume))
    return 0


TRAIN = Command(help="GRPO on verifiable math problems (rlcore train grpo --help)", configure=_configure, run=_run)
