"""The toy regression as an rlcore algorithm: ``rlcore train toy`` and ``rlcore.train(ToyConfig())``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rlcore.algorithm import AlgorithmSpec, Inputs
from rlcore.algorithms.toy.toy import ToyConfig


def _build(cfg: ToyConfig, run: Any, inputs: Inputs) -> Any:
    from rlcore.algorithms.toy.toy import ToyRegression, ToySampler, make_dataset
    from rlcore.checkpoint import write_state
    from rlcore.launcher import Job

    x, y = make_dataset(cfg)
    algo = ToyRegression(cfg)
    return Job(algo, ToySampler(x, y, cfg.batch_size, cfg.seed), evaluate=lambda a: a.evaluate(x, y),
               best_key="eval/score", console_keys=("train/loss", "eval/mse"),
               save_best=lambda directory: write_state({"model": algo.model.state_dict()}, directory))


def _load_policy(run_dir: Path, checkpoint: str) -> Any:
    """The trained MLP (a torch module: inputs (N, dim) -> predictions (N, 1)) of ``checkpoint``."""
    from rlcore.algorithms.toy.toy import ToyRegression
    from rlcore.checkpoint import CheckpointManager, load_state
    from rlcore.config import load_config
    from rlcore.errors import UserError
    from rlcore.run import CHECKPOINT_DIR, saved_config_path

    algo = ToyRegression(load_config(ToyConfig, saved_config_path(run_dir)))
    manager = CheckpointManager(run_dir / CHECKPOINT_DIR)
    if checkpoint == "best" and manager.best_path() is not None:
        algo.model.load_state_dict(load_state(manager.best_path())["model"])
        return algo.model.eval()
    step = manager.latest_step() if checkpoint in ("latest", "best") else int(checkpoint) if checkpoint.isdigit() \
        else None
    if step is None or step not in manager.steps():
        raise UserError(f"'{run_dir}' has no checkpoint '{checkpoint}' (steps {manager.steps() or 'none'}); pass "
                        "best, latest or one of its steps")
    algo.load_state_dict(manager.load(step)["algo"])
    return algo.model.eval()


def _describe(result: Any) -> str:
    return f"toy regression: final mse {result.summary['last']['metrics']['eval/mse']:.4f} -> {result.run_dir}"


SPEC = AlgorithmSpec(name="toy", title="Toy regression", help="toy MLP regression (tests and examples of the "
                     "training loop)", config=ToyConfig, build=_build, load_policy=_load_policy, describe=_describe)
