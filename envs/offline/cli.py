"""``rlcore data collect | mix | info``: make, combine and inspect D4RL-layout datasets."""

from __future__ import annotations

import argparse
import json

from rlcore.cli.commands import Command


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _non_negative(text: str) -> float:
    value = float(text)
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {text}")
    return value


def _configure_collect(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--env", required=True, metavar="ID",
                        help="gymnasium id (Hopper-v5, Pendulum-v1) or task name (hopper-medium-v2)")
    parser.add_argument("--policy", required=True, metavar="POLICY",
                        help="random, scripted (Pendulum-v1 swing-up), a Stable-Baselines3 SAC/TQC model zip, "
                             "or a run directory of `rlcore train`")
    size = parser.add_mutually_exclusive_group(required=True)
    size.add_argument("--steps", type=_positive, metavar="N", help="number of transitions (episodes run to their end "
                      "and the file is cut at N; its last episode ends in a timeout)")
    size.add_argument("--episodes", type=_positive, metavar="N", help="number of whole episodes")
    parser.add_argument("--noise", type=_non_negative, default=0.0, metavar="S",
                        help="std of Gaussian noise added to every action entry, clipped to the bounds (default 0)")
    parser.add_argument("--stochastic", action="store_true",
                        help="sample SB3 agents from their own Gaussian (tanh-squashed) instead of tanh(mean)")
    parser.add_argument("--seed", type=int, default=0, metavar="K", help="episode i resets with seed K+i (default 0)")
    parser.add_argument("--num-envs", type=_positive, default=8, metavar="N",
                        help="environments stepped in lockstep with one batched policy call (default 8)")
    parser.add_argument("--out", required=True, metavar="FILE.hdf5", help="output file (written atomically)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def _run_collect(args: argparse.Namespace) -> int:
    from rlcore.envs.offline.collect import collect, save_dataset

    dataset = collect(args.env, args.policy, steps=args.steps, episodes=args.episodes, seed=args.seed,
                      noise=args.noise, stochastic=args.stochastic, num_envs=args.num_envs,
                      progress=not args.no_progress)
    save_dataset(dataset, args.out)
    s = dataset.summary()
    print(f"wrote {args.out}: {s['transitions']} steps, {s['episodes']} episodes, returns "
          f"{s['return_min']:.1f} .. {s['return_max']:.1f} (mean {s['return_mean']:.1f}), policy "
          f"{dataset.metadata['policy']}")
    return 0


def _configure_mix(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("inputs", nargs="+", metavar="FILE.hdf5", help="two or more D4RL-layout files, in order")
    parser.add_argument("--out", required=True, metavar="FILE.hdf5", help="output file (written atomically)")


def _run_mix(args: argparse.Namespace) -> int:
    from rlcore.envs.offline.collect import mix_files

    result = mix_files(args.inputs, args.out)
    note = f"; dropped {', '.join(result['dropped_keys'])} (not in every input)" if result["dropped_keys"] else ""
    print(f"wrote {result['out']}: {result['steps']} steps from {' + '.join(map(str, result['parts']))}{note}")
    return 0


def _configure_info(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("dataset", metavar="FILE|NAME", help="D4RL-layout HDF5 file, Minari dataset or D4RL name")
    parser.add_argument("--task", help="task whose observation/action sizes the dataset must match")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of text")


def _run_info(args: argparse.Namespace) -> int:
    from rlcore.envs.offline.readers import load_dataset
    from rlcore.envs.offline.registry import get_task, is_task

    dataset = load_dataset(args.dataset, task=args.task)
    info = {"dataset": args.dataset, **dataset.summary(),
            "source_steps": dataset.metadata.get("source_steps", len(dataset)),
            "metadata": {k: v for k, v in dataset.metadata.items() if k not in ("source", "source_steps")}}
    task_name = dataset.metadata.get("task")  # a gymnasium id (no reference scores) for `collect --env Hopper-v5`
    if is_task(task_name) and info["episodes"]:
        task = get_task(task_name)
        info["normalized_return_min"] = task.normalized_score(info["return_min"])
        info["normalized_return_mean"] = task.normalized_score(info["return_mean"])
        info["normalized_return_max"] = task.normalized_score(info["return_max"])
    if args.json:
        print(json.dumps(info, default=str))
        return 0
    print(f"{args.dataset}: valid")
    print(f"  steps in source {info['source_steps']}, transitions {info['transitions']} "
          "(D4RL qlearning semantics: timeout steps dropped)")
    print(f"  episodes {info['episodes']} (terminals {info['terminals']}, time limits {info['timeouts']}), "
          f"lengths {info['episode_length_min']} .. {info['episode_length_max']}")
    print(f"  returns {info['return_min']:.2f} .. {info['return_max']:.2f}, mean {info['return_mean']:.2f}")
    if "normalized_return_mean" in info:
        print(f"  normalised ({task_name}) {info['normalized_return_min']:.1f} .. "
              f"{info['normalized_return_max']:.1f}, mean {info['normalized_return_mean']:.1f}")
    print(f"  obs size {info['obs_dim']}, action size {info['act_dim']} (actions {info['action_min']:.3g} .. "
          f"{info['action_max']:.3g}), rewards {info['reward_min']:.3g} .. {info['reward_max']:.3g}")
    for key, value in info["metadata"].items():
        print(f"  {key}: {value}")
    return 0


COLLECT = Command(help="roll out a behaviour policy in a gymnasium env and write a D4RL-layout HDF5 file",
                  configure=_configure_collect, run=_run_collect)
MIX = Command(help="concatenate D4RL-layout files (e.g. medium-expert = medium + expert)",
              configure=_configure_mix, run=_run_mix)
INFO = Command(help="validate a dataset and summarise it (steps, episodes, returns, sizes)",
               configure=_configure_info, run=_run_info)
