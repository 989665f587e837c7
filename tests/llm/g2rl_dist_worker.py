"""Run under torchrun by tests/llm/test_g2rl_distributed.py: a short G2RL training, then every process saves its
parameters and the world size it saw (python tests/llm/g2rl_dist_worker.py RUN_DIR OUT_DIR KEY=VALUE ...)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from safetensors.torch import save_file

from rlcore.algorithms.g2rl.config import G2RLConfig
from rlcore.algorithms.grpo.launch import TrainResult, train
from rlcore.config import load_config


def run(run_dir: Path, out: Path, overrides: list[str]) -> TrainResult:
    cfg = load_config(G2RLConfig, overrides=overrides)
    result = train(cfg, algo="g2rl", run_dir=run_dir)
    dist = result.trainer.dist
    params = {k: v.contiguous() for k, v in result.trainer.trainable_state().items()}
    save_file(params, str(out / f"rank{dist.rank}.safetensors"))
    (out / f"rank{dist.rank}.json").write_text(json.dumps({"world_size": dist.world_size, "backend": dist.backend}))
    return result


if __name__ == "__main__":
    run(Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3:])
