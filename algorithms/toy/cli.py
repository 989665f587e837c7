"""``rlcore train toy``: the toy regression through the shared launcher and training loop."""

from __future__ import annotations

import argparse

from rlcore.algorithms.toy.toy import ToyConfig
from rlcore.cli.commands import Command, add_train_arguments, config_from_args


def _configure(parser: argparse.ArgumentParser) -> None:
    add_train_arguments(parser, ToyConfig)


def _run(args: argparse.Namespace) -> int:
    from rlcore.algorithms.toy.toy import ToyRegression, ToySampler, make_dataset
    from rlcore.checkpoint import write_state
    from rlcore.launcher import Job, launch
    from rlcore.run import Run

    cfg = config_from_args(ToyConfig, args, algo="toy")

    def setup(run: Run) -> Job:
        x, y = make_dataset(cfg)
        algo = ToyRegression(cfg)
        return Job(algo, ToySampler(x, y, cfg.batch_size, cfg.seed), evaluate=lambda a: a.evaluate(x, y),
                   best_key="eval/score", console_keys=("train/loss", "eval/mse"),
                   save_best=lambda directory: write_state({"model": algo.model.state_dict()}, directory))

    summary, run_dir = launch("toy", cfg, setup, run_dir=args.run_dir, resume=args.resume)
    print(f"toy regression: final mse {summary['last']['metrics']['eval/mse']:.4f} -> {run_dir}")
    return 0


TRAIN = Command(help="toy MLP regression (tests and examples of the training loop)", configure=_configure, run=_run)
