"""``rlcore train toy``: the toy regression through the shared training loop."""

from __future__ import annotations

import argparse

from rlcore.algorithms.toy.toy import ToyConfig
from rlcore.cli.commands import Command, add_train_arguments, config_from_args


def _configure(parser: argparse.ArgumentParser) -> None:
    add_train_arguments(parser, ToyConfig)


def _run(args: argparse.Namespace) -> int:
    from rlcore.algorithms.toy.toy import ToyRegression, ToySampler, make_dataset
    from rlcore.loop import train_loop
    from rlcore.run import Run
    from rlcore.runtime import seed_everything, set_threads

    cfg = config_from_args(ToyConfig, args, algo="toy")
    set_threads(cfg.threads)
    seed_everything(cfg.seed, cfg.deterministic)
    x, y = make_dataset(cfg)
    algo = ToyRegression(cfg)
    sampler = ToySampler(x, y, cfg.batch_size, cfg.seed)
    run = Run.open("toy", cfg, run_dir=args.run_dir, resume=args.resume)
    try:
        summary = train_loop(run, algo, sampler, evaluate=lambda a: a.evaluate(x, y), best_key="eval/score",
                             console_keys=("train/loss", "eval/mse"))
    finally:
        run.close()
    print(f"toy regression: final mse {summary['last']['metrics']['eval/mse']:.4f} -> {run.dir}")
    return 0


TRAIN = Command(help="toy MLP regression (tests and examples of the training loop)", configure=_configure, run=_run)
