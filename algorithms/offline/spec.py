"""The offline family's algorithms as specs: :func:`offline_algorithm` makes the whole
:class:`rlcore.algorithm.AlgorithmSpec` of one offline algorithm from its config and algorithm classes.

What every offline algorithm gets from it: data preparation (reward transform, observation normalisation, IL
modes), vectorised seeds, evaluation in the simulator, "best" policies, checkpoints that hold everything acting
needs (observation statistics, action bounds, sizes), ``rlcore eval <name>``, ``rlcore data collect --policy <run>``
and :func:`rlcore.load_policy`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rlcore.algorithm import AlgorithmSpec, Flag, Inputs
from rlcore.algorithms.offline.cli import eval_command, load_offline_policy
from rlcore.algorithms.offline.config import OfflineConfig

FLAGS = (
    Flag("--task", "task", "D4RL name, e.g. hopper-medium-v2 (simulator, scores, preprocessing)"),
    Flag("--dataset", "dataset", "D4RL-layout HDF5 file or local Minari id (default: from --task)"),
    Flag("--env", "env", "gymnasium id to evaluate in when the data is not a D4RL task"),
    Flag("--seeds", "seeds", "train several seeds vectorised in one process, e.g. 0,1,2,3,4"),
)


def _task(cfg: OfflineConfig) -> str:
    return cfg.task or cfg.env or Path(cfg.dataset or "data").stem


def offline_algorithm(*, name: str, title: str, help: str, config: type[OfflineConfig], algorithm: type,
                      examples: str | None = None) -> AlgorithmSpec:
    """The spec of the offline algorithm ``name``: ``algorithm(cfg, obs_dim, act_dim, device=...)`` with
    ``update(batch)``, ``act(obs)``, ``state_dict()``, ``load_state_dict()`` and a ``policy`` module; an optional
    class attribute ``console_keys`` names the training metrics shown beside the progress bar. ``examples``: the
    command lines ``rlcore train <name> --help`` shows (default: ones that run anywhere, no preset file needed)."""

    def build(cfg: OfflineConfig, run: Any, inputs: Inputs) -> Any:
        import numpy as np

        from rlcore.algorithms.offline.data import prepare_data
        from rlcore.algorithms.offline.evaluation import best_policy_state, make_evaluator, policy_state
        from rlcore.checkpoint import write_state
        from rlcore.envs.offline import DatasetSampler
        from rlcore.launcher import Job
        from rlcore.report import write_report
        from rlcore.runtime import resolve_device

        device = resolve_device(cfg.device)
        data = prepare_data(cfg, run.dir, dataset=inputs.dataset, progress=cfg.progress, device=device)
        algo = algorithm(cfg, data.dataset.obs_dim, data.dataset.act_dim, device=device)
        sampler = DatasetSampler(data.dataset, cfg.batch_size, cfg.seed_list, device)
        metric = "eval/normalized_score" if data.has_scores else "eval/return_mean"
        print(f"{title} on {data.target if isinstance(data.target, str) else data.target.name}: "
              f"{len(data.dataset)} transitions, {data.dataset.num_episodes} episodes, seeds {cfg.seed_list}, "
              f"{cfg.max_steps} steps on {device} -> {run.dir}")
        behaviour = {"behaviour_score": data.behaviour_score(), "behaviour_return_mean":
                     float(np.mean(data.behaviour_returns)) if len(data.behaviour_returns) else None}

        return Job(algo, sampler, evaluate=make_evaluator(cfg, data, device), best_key=metric,
                   console_keys=(*algorithm.console_keys, metric),
                   extra_state=lambda: policy_state(data),
                   save_best=lambda directory: write_state(best_policy_state(algo, data), directory),
                   summary_extra=lambda: behaviour,
                   finish=lambda summary: write_report(run.dir, metric))

    def describe(result: Any) -> str:
        summary = result.summary
        metric = summary["best_key"]
        last, best = summary["last"], summary["best"]
        what = "normalised score" if metric.endswith("normalized_score") else "return"
        seeds = sum(k.startswith(f"{metric}/seed") for k in last["metrics"])
        over = f" (mean over {seeds} seeds)" if seeds > 1 else ""
        text = (f"{title}: {what}{over} last {last['metrics'][metric]:.1f} (step {last['step']}), "
                f"best mean {best['metrics'][metric]:.1f} (step {best['step']})")
        behaviour = summary.get("behaviour_score" if what == "normalised score" else "behaviour_return_mean")
        if behaviour is not None:
            text += f"; behaviour data {behaviour:.1f}"
        return f"{text}\nlearning curve: {result.run_dir / 'learning_curves.png'}"

    return AlgorithmSpec(
        name=name, title=title, help=help, config=config, build=build,
        load_policy=lambda run_dir, checkpoint: load_offline_policy(run_dir, checkpoint, name, config, algorithm),
        evaluate=eval_command(name, title, config, algorithm), flags=FLAGS, task=_task, describe=describe,
        examples=examples or f"rlcore train {name} --task pendulum-scripted-v0 --set max_steps=5000 | rlcore train "
                             f"{name} --task hopper-medium-v2 --dataset hopper_medium-v2.hdf5 --seeds 0,1,2")
