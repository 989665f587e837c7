"""GRPO-family algorithms as specs: :func:`llm_algorithm` makes the spec of plain GRPO or of GRPO with a reward
shaper (G2RL), run by the shared launcher on one process or one of ``world_size`` (torchrun, ``accelerate launch``).

The processes agree on the run directory before it opens (only the main process writes); the build here makes the
shaper and the trainer (the slow part: model weights, a warm start, vLLM). Every new best evaluation is exported to
``<run>/best_model``; a finished run checks that the processes agree and exports ``<run>/model``.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rlcore.algorithm import AlgorithmSpec, Inputs
from rlcore.algorithms.grpo.config import GRPOConfig
from rlcore.errors import UserError

if TYPE_CHECKING:
    from rlcore.algorithms.grpo.trainer import GRPOTrainer
    from rlcore.distributed import Distributed

BEST_MODEL = "best_model"
FINAL_MODEL = "model"


class Processes:
    """The :class:`rlcore.algorithm.Processes` of a GRPO training: its :class:`rlcore.distributed.Distributed`."""

    def __init__(self, cfg: GRPOConfig):
        from rlcore.distributed import Distributed

        self.dist = Distributed(cfg.device, cfg.mixed_precision)
        self.is_main = self.dist.is_main

    def share(self, value: Any) -> Any:
        return self.dist.gather_objects([value])[0]


def check_in_sync(trainer: GRPOTrainer, dist: Distributed) -> None:
    """Raise if the processes ended with different parameters (they must agree after every optimiser step)."""
    import torch

    sums = dist.gather_rows(trainer.parameter_checksum()[None])
    if not torch.equal(sums.amin(0), sums.amax(0)):
        raise RuntimeError(f"processes ended with different parameters (checksums {sums.tolist()}); this is a bug")


def describe(result: Any) -> str:
    """The final pass@k evaluation and the run directory."""
    last = (result.summary.get("last") or {}).get("metrics", {})
    shown = ", ".join(f"{k.removeprefix('eval/')} {v:.2f}" for k, v in last.items() if k.startswith("eval/pass"))
    return f"{shown or 'no evaluation'} -> {result.run_dir}"


def load_policy(run_dir: Path, checkpoint: str, *, name: str, config: type[GRPOConfig]) -> tuple[Any, Any]:
    """``(model, tokenizer)`` of the ``name`` run in ``run_dir`` (its config a ``config``): ``best`` from
    ``best_model/`` (else ``model/``), ``latest`` from ``model/``, a step number from that step's checkpoint."""
    from rlcore.llm import load_policy as load_model

    if checkpoint.isdigit():
        return load_step(run_dir, int(checkpoint), name=name, config=config)
    order = {"best": (BEST_MODEL, FINAL_MODEL), "latest": (FINAL_MODEL,)}.get(checkpoint)
    if order is None:
        raise UserError(f"checkpoint '{checkpoint}' is not best, latest or a step number (this run has steps "
                        f"{checkpoint_steps(run_dir) or 'none'})")
    for folder in order:
        if (run_dir / folder / "config.json").is_file():
            return load_model(run_dir / folder, device="cpu")
    raise UserError(f"'{run_dir}' has no exported model in {' or '.join(f'{f}/' for f in order)} (export_model "
                    "was off, or the run has not finished); load a step checkpoint instead (steps "
                    f"{checkpoint_steps(run_dir) or 'none'})")


def checkpoint_steps(run_dir: Path) -> list[int]:
    """The steps of the run's checkpoints on disk, ascending."""
    from rlcore.checkpoint import CheckpointManager
    from rlcore.run import CHECKPOINT_DIR

    return CheckpointManager(run_dir / CHECKPOINT_DIR).steps()


def load_step(run_dir: Path, step: int, *, name: str, config: type[GRPOConfig]) -> tuple[Any, Any]:
    """``(model, tokenizer)`` at checkpoint ``step``: the model the run's config names (LoRA adapters added as in
    training, then merged) with the trainable weights that checkpoint holds, on the CPU like the exported models.
    Only the weights are read, not the optimiser state."""
    from rlcore.algorithms.grpo.policy import apply_lora, load_trainable, resolve_model
    from rlcore.checkpoint import CheckpointManager
    from rlcore.config import load_config
    from rlcore.llm import load_policy as load_model
    from rlcore.run import CHECKPOINT_DIR, saved_config_path

    manager = CheckpointManager(run_dir / CHECKPOINT_DIR)
    if step not in manager.steps():
        raise UserError(f"'{run_dir}' has no checkpoint of step {step} (steps {manager.steps() or 'none'}); pass "
                        "best, latest or one of its steps")
    cfg = load_config(config, saved_config_path(run_dir), algo=name)
    params = manager.load(step, ("algo", "model"))
    model, tokenizer = load_model(resolve_model(cfg), device="cpu")
    if cfg.lora_rank:
        model = apply_lora(model, cfg)
    load_trainable(model, params)
    if cfg.lora_rank:
        model = model.merge_and_unload()
    return model.eval(), tokenizer


def llm_algorithm(*, name: str, title: str, help: str, config: type[GRPOConfig]) -> AlgorithmSpec:
    """The spec of a GRPO-family algorithm: its config class picks the defaults (e.g. ``shaper``); the trainer
    builds the reward shaper that ``cfg.shaper`` names."""

    def build(cfg: GRPOConfig, run: Any, inputs: Inputs) -> Any:
        from rlcore.algorithms.grpo.completions import CompletionLog
        from rlcore.algorithms.grpo.trainer import GRPOTrainer
        from rlcore.launcher import Job

        dist = inputs.processes.dist
        log = CompletionLog(run.dir, resume_step=run.resume_step or 0, write=dist.is_main) \
            if cfg.log_completions_every else None
        # the one place the user's dataset and reward functions from rlcore.train reach the GRPO side
        trainer = GRPOTrainer(cfg, dist, completion_log=log, train_data=inputs.dataset,
                              reward_funcs=inputs.reward_funcs)

        def finish(summary: dict[str, Any]) -> None:
            check_in_sync(trainer, dist)
            if cfg.export_model and dist.is_main:
                trainer.export(run.dir / FINAL_MODEL)

        evaluate = (lambda t: t.evaluate()) if trainer.eval_problems is not None else None
        return Job(trainer, trainer.sampler, evaluate=evaluate, best_key="eval/pass@1",
                   console_keys=("train/reward", "train/accuracy", "eval/pass@1", "geom/mean_cos"),
                   save_best=trainer.export if cfg.export_model else None, best_dir=BEST_MODEL,
                   agree=dist.any if dist.world_size > 1 else None, finish=finish, close=trainer.close)

    return AlgorithmSpec(name=name, title=title, help=help, config=config, build=build,
                         load_policy=functools.partial(load_policy, name=name, config=config),
                         task=lambda cfg: cfg.dataset, describe=describe, processes=Processes,
                         examples=f"rlcore train {name} --config configs/{name}/tiny-arith.yaml")
