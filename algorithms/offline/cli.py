"""CLI plugins: ``rlcore train odice|bc|iql``, ``rlcore eval odice|bc|iql``, and the policy loader that lets
``rlcore data collect --policy <run dir>`` act with a trained policy."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from rlcore.cli.commands import Command, add_train_arguments, config_from_args

HELP = {
    "odice": "O-DICE (orthogonal-gradient DICE) on an offline dataset",
    "bc": "behaviour cloning baseline on an offline dataset",
    "iql": "IQL baseline (CORL settings) on an offline dataset",
}


def _config_class(algo: str) -> type:
    from rlcore.algorithms.offline.train import ALGORITHMS

    return ALGORITHMS[algo][0]


def _train_command(algo: str) -> Command:
    def configure(parser: argparse.ArgumentParser) -> None:
        add_train_arguments(parser, _config_class(algo))
        parser.add_argument("--task", help="D4RL name, e.g. hopper-medium-v2 (simulator, scores, preprocessing)")
        parser.add_argument("--dataset", help="D4RL-layout HDF5 file or local Minari id (default: from --task)")
        parser.add_argument("--env", help="gymnasium id to evaluate in when the data is not a D4RL task")
        parser.add_argument("--seeds", help="train several seeds vectorised in one process, e.g. 0,1,2,3,4")
        parser.epilog = ("examples: rlcore train odice --config configs/odice/demo.yaml | rlcore train odice "
                         "--task hopper-medium-v2 --dataset hopper_medium-v2.hdf5 --seeds 0,1,2")

    def run(args: argparse.Namespace) -> int:
        from rlcore.algorithms.offline.train import train

        values = {"task": args.task, "dataset": args.dataset, "env": args.env, "seeds": args.seeds}
        cfg = config_from_args(_config_class(algo), args, algo=algo, values=values)
        train(algo, cfg, run_dir=args.run_dir, resume=args.resume)
        return 0

    return Command(help=HELP[algo], configure=configure, run=run)


TRAIN_ODICE, TRAIN_BC, TRAIN_IQL = (_train_command(a) for a in ("odice", "bc", "iql"))


def load_trained(run_dir: str | Path, checkpoint: str = "latest") -> tuple[Any, Any, dict[str, Any]]:
    """(algorithm object, its config, the checkpoint's extra state) from a run directory of odice/bc/iql.

    ``checkpoint``: latest, best, or a step number.
    """
    from rlcore.algorithms.offline.train import ALGORITHMS
    from rlcore.checkpoint import CheckpointManager
    from rlcore.config import load_config, read_yaml
    from rlcore.errors import UserError
    from rlcore.run import CHECKPOINT_DIR, saved_config_path

    config_path = saved_config_path(run_dir)
    algo_name = read_yaml(config_path).get("algo")
    if algo_name not in ALGORITHMS:
        raise UserError(f"'{run_dir}' was trained with '{algo_name}', not one of {', '.join(ALGORITHMS)}")
    config_cls, algo_cls = ALGORITHMS[algo_name]
    cfg = load_config(config_cls, config_path, algo=algo_name)
    manager = CheckpointManager(Path(run_dir) / CHECKPOINT_DIR)
    if checkpoint == "latest":
        step = manager.latest_step()
    elif checkpoint == "best":
        step = (manager.best or {}).get("step")
    else:
        step = int(checkpoint)
    if step is None or step not in manager.steps():
        raise UserError(f"'{run_dir}' has no {checkpoint} checkpoint (found steps {manager.steps() or 'none'}); "
                        "train it first or pick another with --checkpoint")
    state = manager.load(step)
    extra = state["extra"]
    algo = algo_cls(cfg, int(extra["obs_dim"]), int(extra["act_dim"]))
    algo.load_state_dict(state["algo"])
    extra["step"] = step
    return algo, cfg, extra


def load_policy(run_dir: str | Path):
    """The ``rlcore.policies`` plugin: a run directory's latest policy on raw observations (seed index 0)."""
    import numpy as np
    import torch

    from rlcore.algorithms.offline.data import ActionScaler
    from rlcore.algorithms.offline.evaluation import policy_fn
    from rlcore.envs.offline import ObservationNormalizer

    algo, _, extra = load_trained(run_dir)
    normalizer = ObservationNormalizer.from_state_dict(extra["normalizer"]) if extra["normalizer"] else None
    scaler = ActionScaler(np.asarray(extra["action_low"]), np.asarray(extra["action_high"]))
    return policy_fn(algo, 0, normalizer, scaler, torch.device("cpu"))


def _eval_configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--run-dir", required=True, help="run directory written by rlcore train odice|bc|iql")
    parser.add_argument("--checkpoint", default="latest", help="latest, best, or a step number")
    parser.add_argument("--episodes", type=int, help="episodes per seed (default: the run's eval_episodes)")
    parser.add_argument("--seed", type=int, default=None, help="first reset seed (default: as during training)")


def _eval_run(args: argparse.Namespace) -> int:
    import numpy as np
    import torch

    from rlcore.algorithms.offline.data import ActionScaler, resolve_target
    from rlcore.algorithms.offline.evaluation import eval_seed, policy_fn
    from rlcore.envs.offline import ObservationNormalizer, evaluate

    algo, cfg, extra = load_trained(args.run_dir, args.checkpoint)
    normalizer = ObservationNormalizer.from_state_dict(extra["normalizer"]) if extra["normalizer"] else None
    scaler = ActionScaler(np.asarray(extra["action_low"]), np.asarray(extra["action_high"]))
    target = resolve_target(cfg)
    results = {}
    for k, seed in enumerate(cfg.seed_list):
        result = evaluate(policy_fn(algo, k, normalizer, scaler, torch.device("cpu")), target,
                          episodes=args.episodes or cfg.eval_episodes,
                          seed=args.seed if args.seed is not None else eval_seed(seed), progress=True)
        results[f"seed{seed}"] = {k2: result[k2] for k2 in ("return_mean", "return_stderr", "normalized_score_mean",
                                                           "normalized_score_stderr", "success_rate", "episodes")}
    print(json.dumps({"run_dir": str(args.run_dir), "checkpoint_step": extra["step"], "results": results}, indent=1))
    return 0


EVAL = Command(help="evaluate a trained O-DICE/BC/IQL policy from its run directory", configure=_eval_configure,
               run=_eval_run)
