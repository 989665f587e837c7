"""A trained offline run read back: its policy on raw observations (:func:`load_offline_policy`, behind
:func:`rlcore.load_policy` and ``rlcore data collect --policy <run>``) and ``rlcore eval <algo>``."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np

from rlcore.cli.commands import Command


def load_trained(run_dir: str | Path, checkpoint: str, name: str, config: type, algorithm: type
                 ) -> tuple[Any, Any, dict[str, Any]]:
    """(algorithm object, its config, what acting needs) from a run directory of algorithm ``name``.

    ``checkpoint``: latest, best (the policy of the best evaluation, saved when it happened), or a step number.
    The returned ``extra`` holds sizes, observation statistics, action bounds and ``step``.
    """
    from rlcore.checkpoint import CheckpointManager, load_state
    from rlcore.config import load_config, read_yaml
    from rlcore.errors import UserError
    from rlcore.run import CHECKPOINT_DIR, saved_config_path

    config_path = saved_config_path(run_dir)
    trained = read_yaml(config_path).get("algo")
    if trained != name:
        raise UserError(f"'{run_dir}' was trained with '{trained}', not '{name}'; use `rlcore eval {trained}` or "
                        "rlcore.load_policy(run_dir)")
    cfg = load_config(config, config_path, algo=name)
    manager = CheckpointManager(Path(run_dir) / CHECKPOINT_DIR)
    best_path = manager.best_path() if checkpoint == "best" else None
    if best_path is not None:
        state = load_state(best_path)
        extra = state["extra"]
        algo = algorithm(cfg, int(extra["obs_dim"]), int(extra["act_dim"]))
        algo.policy.load_state_dict(state["policy"])
        extra["step"] = int(manager.best["step"])
        return algo, cfg, extra
    if checkpoint == "latest":
        step = manager.latest_step()
    elif checkpoint == "best":  # runs written before best policies were saved: the best checkpoint
        step = (manager.best or {}).get("step")
    elif checkpoint.isdigit():
        step = int(checkpoint)
    else:
        raise UserError(f"checkpoint '{checkpoint}' is not latest, best or a step number (this run has steps "
                        f"{manager.steps() or 'none'})")
    if step is None or step not in manager.steps():
        raise UserError(f"'{run_dir}' has no {checkpoint} checkpoint (found steps {manager.steps() or 'none'}); "
                        "train it first or pick another checkpoint")
    state = manager.load(step)
    extra = state["extra"]
    algo = algorithm(cfg, int(extra["obs_dim"]), int(extra["act_dim"]))
    algo.load_state_dict(state["algo"])
    extra["step"] = step
    return algo, cfg, extra


def _acting(algo: Any, extra: dict[str, Any], seed_index: int = 0) -> Any:
    """Seed ``seed_index``'s deterministic policy on raw observations (N, obs_dim) -> env actions (N, act_dim)."""
    import torch

    from rlcore.algorithms.offline.data import ActionScaler
    from rlcore.algorithms.offline.evaluation import policy_fn
    from rlcore.envs.offline import ObservationNormalizer

    normalizer = ObservationNormalizer.from_state_dict(extra["normalizer"]) if extra["normalizer"] else None
    scaler = ActionScaler(np.asarray(extra["action_low"]), np.asarray(extra["action_high"]))
    return policy_fn(algo, seed_index, normalizer, scaler, torch.device("cpu"))


class OfflinePolicy:
    """A trained offline policy on raw observations: the run's observation normaliser and action bounds included,
    deterministic, the first seed of a vectorised run. ``step`` is the checkpoint's training step."""

    def __init__(self, algo: Any, extra: dict[str, Any]):
        self._act = _acting(algo, extra)
        self.step = int(extra["step"])
        self.obs_dim, self.act_dim = int(extra["obs_dim"]), int(extra["act_dim"])

    def act(self, obs: Any) -> np.ndarray:
        """Actions for ``obs``: (obs_dim,) -> (act_dim,), or a batch (N, obs_dim) -> (N, act_dim); numpy float32."""
        x = np.asarray(obs, dtype=np.float32)
        single = x.ndim == 1
        actions = self._act(x[None] if single else x)
        return actions[0] if single else actions

    __call__ = act


def load_offline_policy(run_dir: str | Path, checkpoint: str, name: str, config: type, algorithm: type
                        ) -> OfflinePolicy:
    """The :class:`OfflinePolicy` of ``checkpoint`` (best, latest or a step number) in ``run_dir``."""
    algo, _, extra = load_trained(run_dir, checkpoint, name, config, algorithm)
    return OfflinePolicy(algo, extra)


def eval_command(name: str, title: str, config: type, algorithm: type) -> Command:
    """``rlcore eval <name> --run-dir <run>``: every seed's policy in the simulator, as JSON on stdout."""

    def configure(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--run-dir", required=True, help=f"run directory written by rlcore train {name}")
        parser.add_argument("--checkpoint", default="latest", help="latest, best, or a step number")
        parser.add_argument("--episodes", type=int, help="episodes per seed (default: the run's eval_episodes)")
        parser.add_argument("--seed", type=int, default=None, help="first reset seed (default: as during training)")

    def run(args: argparse.Namespace) -> int:
        from rlcore.algorithms.offline.data import resolve_target
        from rlcore.algorithms.offline.evaluation import eval_seed
        from rlcore.envs.offline import evaluate

        algo, cfg, extra = load_trained(args.run_dir, args.checkpoint, name, config, algorithm)
        target = resolve_target(cfg)
        results = {}
        for k, seed in enumerate(cfg.seed_list):
            result = evaluate(_acting(algo, extra, k), target, episodes=args.episodes or cfg.eval_episodes,
                              seed=args.seed if args.seed is not None else eval_seed(seed), progress=True)
            results[f"seed{seed}"] = {key: result[key] for key in (
                "return_mean", "return_stderr", "normalized_score_mean", "normalized_score_stderr", "success_rate",
                "episodes")}
        print(json.dumps({"run_dir": str(args.run_dir), "checkpoint_step": extra["step"], "results": results},
                         indent=1))
        return 0

    return Command(help=f"evaluate a trained {title} policy from its run directory", configure=configure, run=run)
