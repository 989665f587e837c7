"""``rlcore data collect | mix | info | download | list``: make, combine, inspect and fetch D4RL-layout datasets."""

from __future__ import annotations

import argparse
import json
import os

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


def _configure_download(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("names", nargs="+", metavar="NAME",
                        help="D4RL name (hopper-medium-v2) or Minari id (minari:<id>, mujoco/hopper/medium-v0)")
    parser.add_argument("--dir", metavar="DIR", help="folder for the files (default $D4RL_DATASET_DIR, else "
                        "~/.d4rl/datasets; for Minari ids: instead of $MINARI_DATASETS_PATH)")
    parser.add_argument("--offline", action="store_true",
                        help="never touch the network: only report what is already there (as RLCORE_OFFLINE=1)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.epilog = ("D4RL files come from D4RL's URLs; set RLCORE_D4RL_URL=<base> to use a mirror with the same "
                     "relative paths. A transfer resumes where it stopped and the file is checked before use.")


def _run_download(args: argparse.Namespace) -> int:
    from rlcore.envs.offline.download import fetch_dataset

    if args.dir:  # minari.download_dataset reads its folder from the environment
        os.environ["MINARI_DATASETS_PATH"] = args.dir
    for name in args.names:
        path = fetch_dataset(name, args.dir, progress=not args.no_progress)
        size = path.stat().st_size if path.is_file() else sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
        print(f"{name}: {path} ({_human(size)})")
    return 0


def _configure_list(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--local", action="store_true", help="only the datasets that are already here")


def _run_list(args: argparse.Namespace) -> int:
    from rlcore.envs.offline.download import d4rl_dir, dataset_table, minari_dir

    rows = dataset_table(local_only=args.local)
    name_w = max([4, *(len(r["name"]) for r in rows)])
    source_w = max([6, *(len(r["source"]) for r in rows)])
    print(f"{'NAME':<{name_w}}  {'SOURCE':<{source_w}}  {'STATUS':<8}  SIZE")
    for r in rows:
        size = _human(r["size"]) if r["size"] is not None else "-"
        print(f"{r['name']:<{name_w}}  {r['source']:<{source_w}}  {r['status']:<8}  {size}")
    print(f"{sum(r['status'] == 'local' for r in rows)} local; D4RL files in {d4rl_dir()} (D4RL_DATASET_DIR), "
          f"Minari datasets in {minari_dir()} (MINARI_DATASETS_PATH)")
    return 0


def _human(size: int) -> str:
    value, unit = float(size), "B"
    for larger in ("KiB", "MiB", "GiB"):
        if value < 1024:
            break
        value, unit = value / 1024, larger
    return f"{size} B" if unit == "B" else f"{value:.1f} {unit}"


COLLECT = Command(help="roll out a behaviour policy in a gymnasium env and write a D4RL-layout HDF5 file",
                  configure=_configure_collect, run=_run_collect)
MIX = Command(help="concatenate D4RL-layout files (e.g. medium-expert = medium + expert)",
              configure=_configure_mix, run=_run_mix)
INFO = Command(help="validate a dataset and summarise it (steps, episodes, returns, sizes)",
               configure=_configure_info, run=_run_info)
DOWNLOAD = Command(help="fetch D4RL files (D4RL's URLs or RLCORE_D4RL_URL) and Minari datasets ahead of time",
                   configure=_configure_download, run=_run_download)
LIST = Command(help="the dataset names that can be fetched, where they come from, and which are here",
               configure=_configure_list, run=_run_list)
