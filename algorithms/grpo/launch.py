"""Launching a GRPO training through :func:`rlcore.launcher.launch`: one process of ``world_size`` (torchrun,
``accelerate launch``) or a plain call.

The processes agree on the run directory first; then the shared launcher opens it, the setup here builds the
shaper and the trainer (the slow part: model weights, a warm start, vLLM), and the loop runs. Every new best
evaluation is exported to ``<run>/best_model``; a finished run checks that the processes agree and exports
``<run>/model``.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import torch

from rlcore.algorithms.grpo.config import GRPOConfig
from rlcore.algorithms.grpo.trainer import GRPOTrainer
from rlcore.completions import CompletionLog
from rlcore.distributed import Distributed

BEST_MODEL = "best_model"
FINAL_MODEL = "model"


def check_in_sync(trainer: GRPOTrainer, dist: Distributed) -> None:
    """Raise if the processes ended with different parameters (they must agree after every optimiser step)."""
    sums = dist.gather_rows(trainer.parameter_checksum()[None])
    if not torch.equal(sums.amin(0), sums.amax(0)):
        raise RuntimeError(f"processes ended with different parameters (checksums {sums.tolist()}); this is a bug")


@dataclasses.dataclass
class TrainResult:
    summary: dict[str, Any]
    """What summary.json holds: last and best evaluation, steps, wall time."""
    trainer: GRPOTrainer
    run_dir: Path


def train(cfg: GRPOConfig, *, algo: str, run_dir: str | Path | None = None, resume: bool = False,
          dataset: Any = None, reward_funcs: Any = None) -> TrainResult:
    """Run (or resume) a GRPO training in this process, one of ``world_size`` when launched with torchrun or
    ``accelerate launch``. ``dataset`` and ``reward_funcs`` replace ``cfg.dataset`` / ``cfg.reward_funcs``
    (see :class:`GRPOTrainer`); the reward shaper is the one ``cfg.shaper`` names."""
    from rlcore.launcher import Job, launch
    from rlcore.run import Run, default_run_dir

    dist = Distributed(cfg.device, cfg.mixed_precision)
    task = cfg.dataset if dataset is None or isinstance(dataset, str) else "data"
    run_dir = dist.gather_objects([str(run_dir or default_run_dir(algo, task))])[0]  # the main's choice
    built: dict[str, GRPOTrainer] = {}

    def setup(run: Run) -> Job:
        log = CompletionLog(run.dir, resume_step=run.resume_step or 0, write=dist.is_main) \
            if cfg.log_completions_every else None
        trainer = built["trainer"] = GRPOTrainer(cfg, dist, completion_log=log, train_data=dataset,
                                                 reward_funcs=reward_funcs)

        def finish(summary: dict[str, Any]) -> None:
            check_in_sync(trainer, dist)
            if cfg.export_model and dist.is_main:
                trainer.export(run.dir / FINAL_MODEL)

        evaluate = (lambda t: t.evaluate()) if trainer.eval_problems is not None else None
        return Job(trainer, trainer.sampler, evaluate=evaluate, best_key="eval/pass@1",
                   console_keys=("train/reward", "train/accuracy", "eval/pass@1", "geom/mean_cos"),
                   save_best=trainer.export if cfg.export_model else None, best_dir=BEST_MODEL,
                   agree=dist.any if dist.world_size > 1 else None, finish=finish, close=trainer.close)

    summary, path = launch(algo, cfg, setup, run_dir=run_dir, task=task, resume=resume,
                           is_main=dist.is_main)
    return TrainResult(summary, built["trainer"], path)
