"""Run under torchrun by tests/llm/test_g2rl_distributed.py: a short G2RL training through rlcore.train, then every
process saves its parameters and the world size it saw (python tests/llm/g2rl_dist_worker.py RUN_DIR OUT_DIR
KEY=VALUE ...)."""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path
from typing import Any

from safetensors.torch import save_file

import rlcore
from rlcore.algorithm import ALGORITHMS
from rlcore.algorithms.g2rl.config import G2RLConfig
from rlcore.config import load_config


def distinct_characters(completions: list[str], **kwargs: Any) -> list[float]:
    """A reward in [0, 1] that differs within and between groups (a random tiny model is never right): the share
    of the response's characters that are distinct."""
    return [len(set(c)) / max(len(c), 1) for c in completions]


def run(run_dir: Path, out: Path, overrides: list[str]) -> tuple[rlcore.RunResult, Any]:
    """Train; returns the result and the trainer."""
    spec = ALGORITHMS.get("g2rl")
    jobs = []

    def build(cfg, run, inputs):  # the registered spec's build, keeping its job to read the trainer afterwards
        jobs.append(spec.build(cfg, run, inputs))
        return jobs[-1]

    ALGORITHMS.register("g2rl", dataclasses.replace(spec, build=build))
    result = rlcore.train(load_config(G2RLConfig, overrides=overrides), run_dir=run_dir)
    trainer = jobs[0].algo
    dist = trainer.dist
    params = {k: v.contiguous() for k, v in trainer.trainable_state().items()}
    save_file(params, str(out / f"rank{dist.rank}.safetensors"))
    (out / f"rank{dist.rank}.json").write_text(json.dumps({"world_size": dist.world_size, "backend": dist.backend}))
    return result, trainer


if __name__ == "__main__":
    run(Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3:])
