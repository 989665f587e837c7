"""Launching a GRPO training: one process of ``world_size`` (torchrun, ``accelerate launch``) or a plain call.

Sets threads and seeds, builds the shaper and the trainer, opens the run directory, runs
:func:`rlcore.loop.train_loop`, checks that the processes agree, and exports the final and best policies.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from rlcore.algorithms.grpo.config import GRPOConfig
from rlcore.completions import CompletionLog
from rlcore.distributed import Distributed
from rlcore.run import Run

if TYPE_CHECKING:
    from rlcore.algorithms.grpo.trainer import GRPOTrainer


def export_models(trainer: GRPOTrainer, run: Run) -> None:
    """``<run>/model`` (final) and ``<run>/best_model`` (best evaluation) in HF format; main process only."""
    if not run.is_main:
        return
    trainer.export(run.dir / "model")
    best = run.checkpoints.best
    if best is not None:
        trainer.load_trainable(run.checkpoints.load(int(best["step"]))["algo"]["model"])
        trainer.export(run.dir / "best_model")


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
          make_shaper: Any = None) -> TrainResult:
    """Run (or resume) a GRPO training in this process, one of ``world_size`` when launched with torchrun or
    ``accelerate launch``. ``make_shaper(cfg, dist)`` builds the reward shaper (None: plain GRPO)."""
    from rlcore.algorithms.grpo.data import PromptSampler
    from rlcore.algorithms.grpo.trainer import GRPOTrainer
    from rlcore.loop import train_loop
    from rlcore.run import default_run_dir
    from rlcore.runtime import seed_everything, set_threads

    set_threads(cfg.threads)
    seed_everything(cfg.seed, cfg.deterministic)
    dist = Distributed(cfg.device, cfg.mixed_precision)
    shaper = make_shaper(cfg, dist) if make_shaper is not None else None
    trainer = GRPOTrainer(cfg, dist, shaper)
    sampler = PromptSampler(len(trainer.train_problems), cfg.prompts_per_step, cfg.seed)
    trainer.more_prompts = sampler.sample  # dynamic sampling draws its extra rounds from the run's sampler
    run_dir = dist.gather_objects([str(run_dir or default_run_dir(algo, cfg.dataset))])[0]  # the main's choice
    run = Run.open(algo, cfg, run_dir=run_dir, task=cfg.dataset, resume=resume, is_main=dist.is_main)
    if cfg.log_completions_every:
        trainer.completion_log = CompletionLog(run.dir, resume_step=run.checkpoints.latest_step() or 0,
                                               write=dist.is_main)
    try:
        summary = train_loop(run, trainer, sampler,
                             evaluate=(lambda t: t.evaluate()) if trainer.eval_problems is not None else None,
                             best_key="eval/pass@1",
                             console_keys=("train/reward", "train/accuracy", "eval/pass@1", "geom/mean_cos"))
        check_in_sync(trainer, dist)
        if cfg.export_model:
            export_models(trainer, run)
    finally:
        run.close()
        trainer.close()
    return TrainResult(summary, trainer, run.dir)
