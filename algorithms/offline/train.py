"""Training O-DICE, IQL or BC on an offline dataset: the family's registry and its training entry.

A trained run directory holds everything acting needs (observation statistics, action bounds, sizes) in every
checkpoint, so it alone is enough to evaluate or to collect data with the policy.
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
from rlcore.algorithms.offline.evaluation import make_evaluator, policy_state
from rlcore.algorithms.offline.sampler import MultiSeedSampler
from rlcore.loop import train_loop
from rlcore.run import Run, default_run_dir
from rlcore.runtime import resolve_device, seed_everything, set_threads

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
    set_threads(cfg.threads)
    seed_everything(cfg.seed, cfg.deterministic)
    device = resolve_device(cfg.device)
    run_path = Path(run_dir) if run_dir is not None else default_run_dir(
        algo_name, cfg.task or cfg.env or Path(cfg.dataset or "data").stem)
    # every input is checked before the run directory exists, so a bad start leaves no files behind
    data = prepare_data(cfg, algo_name, run_path, progress=cfg.progress, device=device)
    run = Run.open(algo_name, cfg, run_dir=run_path, resume=resume)
    try:
        algo = algo_cls(cfg, data.dataset.obs_dim, data.dataset.act_dim, device=device)
        sampler = MultiSeedSampler(data.dataset, cfg.batch_size, cfg.seed_list, device)
        metric = "eval/normalized_score" if data.has_scores else "eval/return_mean"
        log(f"{TITLES[algo_name]} on {data.target if isinstance(data.target, str) else data.target.name}: "
            f"{len(data.dataset)} transitions, {data.dataset.num_episodes} episodes, seeds {cfg.seed_list}, "
            f"{cfg.max_steps} steps on {device} -> {run.dir}")
        summary = train_loop(run, algo, sampler, evaluate=make_evaluator(cfg, data, device), best_key=metric,
                             console_keys=("train/v_loss", "train/policy_loss", metric),
                             extra_state=lambda: policy_state(data))
        summary["behaviour_score"] = data.behaviour_score()
        summary["behaviour_return_mean"] = float(np.mean(data.behaviour_returns)) if len(data.behaviour_returns) \
            else None
        run.write_summary(summary)
    finally:
        run.close()
    from rlcore.report import write_report

    write_report(run.dir, metric)
    log(describe_summary(algo_name, summary, metric))
    log(f"learning curve: {run.dir / 'learning_curves.png'}")
    return summary


def describe_summary(algo_name: str, summary: dict[str, Any], metric: str) -> str:
    last, best = summary["last"], summary["best"]
    name = "normalised score" if metric.endswith("normalized_score") else "return"
    text = (f"{TITLES[algo_name]}: {name} last {last['metrics'][metric]:.1f} (step {last['step']}), "
            f"best {best['metrics'][metric]:.1f} (step {best['step']})")
    behaviour = summary.get("behaviour_score") if name == "normalised score" else summary.get("behaviour_return_mean")
    if behaviour is not None:
        text += f"; behaviour data {behaviour:.1f}"
    return text
