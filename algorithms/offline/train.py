"""Training O-DICE, IQL or BC on an offline dataset: the family's registry and its training entry.

A trained run directory holds everything acting needs (observation statistics, action bounds, sizes) in every
checkpoint and with the best policy (``checkpoints/best``), so it alone is enough to evaluate or to collect data
with the policy.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from rlcore.algorithms.bc import BC, BCConfig
from rlcore.algorithms.iql import IQL, IQLConfig
from rlcore.algorithms.odice import ODICE, ODICEConfig
from rlcore.algorithms.offline.config import OfflineConfig
from rlcore.algorithms.offline.data import prepare_data
from rlcore.algorithms.offline.evaluation import best_policy_state, make_evaluator, policy_state
from rlcore.algorithms.offline.sampler import MultiSeedSampler
from rlcore.checkpoint import write_state
from rlcore.launcher import Job, launch
from rlcore.run import Run
from rlcore.runtime import resolve_device

ALGORITHMS: dict[str, tuple[type[OfflineConfig], type]] = {
    "odice": (ODICEConfig, ODICE),
    "bc": (BCConfig, BC),
    "iql": (IQLConfig, IQL),
}
"""The offline family: command name -> (config class, algorithm class). A new offline algorithm is one line."""
TITLES = {"odice": "O-DICE", "bc": "BC", "iql": "IQL"}


def train(algo_name: str, cfg: OfflineConfig, run_dir: str | Path | None = None, resume: bool = False,
          log: Callable[[str], None] = print) -> dict[str, Any]:
    """Train ``algo_name`` (odice, bc or iql) with ``cfg``; returns the run summary (also in summary.json)."""
    _, algo_cls = ALGORITHMS[algo_name]
    device = resolve_device(cfg.device)

    def setup(run: Run) -> Job:
        data = prepare_data(cfg, algo_name, run.dir, progress=cfg.progress, device=device)
        algo = algo_cls(cfg, data.dataset.obs_dim, data.dataset.act_dim, device=device)
        sampler = MultiSeedSampler(data.dataset, cfg.batch_size, cfg.seed_list, device)
        metric = "eval/normalized_score" if data.has_scores else "eval/return_mean"
        log(f"{TITLES[algo_name]} on {data.target if isinstance(data.target, str) else data.target.name}: "
            f"{len(data.dataset)} transitions, {data.dataset.num_episodes} episodes, seeds {cfg.seed_list}, "
            f"{cfg.max_steps} steps on {device} -> {run.dir}")
        behaviour = {"behaviour_score": data.behaviour_score(), "behaviour_return_mean":
                     float(np.mean(data.behaviour_returns)) if len(data.behaviour_returns) else None}
        return Job(algo, sampler, evaluate=make_evaluator(cfg, data, device), best_key=metric,
                   console_keys=("train/v_loss", "train/policy_loss", metric),
                   extra_state=lambda: policy_state(data),
                   save_best=lambda directory: write_state(best_policy_state(algo, data), directory),
                   summary_extra=lambda: behaviour)

    task = cfg.task or cfg.env or Path(cfg.dataset or "data").stem
    summary, path = launch(algo_name, cfg, setup, run_dir=run_dir, task=task, resume=resume)
    from rlcore.report import write_report

    write_report(path, summary["best_key"])
    log(describe_summary(algo_name, summary, summary["best_key"]))
    log(f"learning curve: {path / 'learning_curves.png'}")
    return summary


def describe_summary(algo_name: str, summary: dict[str, Any], metric: str) -> str:
    """The closing line: last and best mean of ``metric`` (the best mean over seeds at one step, with that step)."""
    last, best = summary["last"], summary["best"]
    name = "normalised score" if metric.endswith("normalized_score") else "return"
    seeds = sum(k.startswith(f"{metric}/seed") for k in last["metrics"])
    over = f" (mean over {seeds} seeds)" if seeds > 1 else ""
    text = (f"{TITLES[algo_name]}: {name}{over} last {last['metrics'][metric]:.1f} (step {last['step']}), "
            f"best mean {best['metrics'][metric]:.1f} (step {best['step']})")
    behaviour = summary.get("behaviour_score") if name == "normalised score" else summary.get("behaviour_return_mean")
    if behaviour is not None:
        text += f"; behaviour data {behaviour:.1f}"
    return text
