"""Dynamic sampling and the completions log over two CPU processes (torchrun, gloo): the same rounds, the same
selected groups, the same log and the same parameters as one process running the same global batch."""

from __future__ import annotations

import os
import statistics
import subprocess
import sys

import pytest

pytest.importorskip("transformers", reason="the llm extra is not installed (pip install 'rlcore[llm]')")

import torch  # noqa: E402
from conftest import REPO  # noqa: E402
from g2rl_dist_worker import run  # noqa: E402
from safetensors.torch import load_file  # noqa: E402
from test_g2rl_distributed import SETTINGS  # noqa: E402

from rlcore.logging import read_metrics  # noqa: E402
from rlcore.report.completions import read_completions  # noqa: E402

# only odd problems get unequal rewards: rounds are needed, and some groups are dropped
FEATURES = ["scaler=none", "reward_funcs=[distrewards:odd_prompt]", "dynamic_sampling=true", "max_gen_batches=3",
            "log_completions_every=1", "prompts_per_step=4", "micro_batch_size=2"]


@pytest.mark.slow
def test_dynamic_sampling_two_processes_match_one(tmp_path, monkeypatch):
    (tmp_path / "distrewards.py").write_text(
        "def odd_prompt(id, completion_ids, **kw):\n"
        "    return [float(int(i.split('/')[1]) % 2 * (c[0] % 7)) for i, c in zip(id, completion_ids)]\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    two, one = tmp_path / "two", tmp_path / "one"
    two.mkdir()
    one.mkdir()
    settings = SETTINGS + FEATURES
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": os.pathsep.join([str(tmp_path), *sys.path])}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           str(REPO / "tests" / "llm" / "g2rl_dist_worker.py"), str(two / "run"), str(two), *settings]
    result = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    _, trainer = run(one / "run", one, settings)
    rank0, rank1 = load_file(str(two / "rank0.safetensors")), load_file(str(two / "rank1.safetensors"))
    for k, v in trainer.trainable_state().items():
        assert torch.equal(rank0[k], rank1[k]), k
        torch.testing.assert_close(rank0[k], v, atol=2e-6, rtol=1e-4)

    def view(run_dir):
        return [(r["step"], r["round"], r["group"], r["prompt_id"], r["response"], r["reward"], r["trained"])
                for r in read_completions(run_dir)]

    assert view(two / "run") == view(one / "run")
    rounds = [r["train/gen_rounds"] for r in read_metrics(one / "run") if "train/gen_rounds" in r]
    assert rounds == [r["train/gen_rounds"] for r in read_metrics(two / "run") if "train/gen_rounds" in r]
    assert max(rounds) > 1 and len(view(one / "run")) == 4 * 4 * sum(rounds)
    # reward_std is the spread of all the step's rewards (every round, both processes), as the log recomputes it
    stds = [[r["train/reward_std"] for r in read_metrics(run_dir)] for run_dir in (one / "run", two / "run")]
    logged = [[r["reward"] for r in read_completions(one / "run") if r["step"] == step] for step in (1, 2)]
    assert stds[0] == pytest.approx([statistics.stdev(v) for v in logged], rel=1e-5) and max(stds[0]) > 0
    assert stds[1] == pytest.approx(stds[0], rel=1e-5)
    assert any(r[-1] for r in view(one / "run")) and not all(r[-1] for r in view(one / "run"))
