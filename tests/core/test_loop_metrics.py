"""The update loop averages each metric over the steps that reported it, also across a resume."""

from __future__ import annotations

import json

import pytest
import torch

from rlcore.logging import read_metrics
from rlcore.loop import train_loop
from rlcore.run import Run, TrainConfig


class Periodic:
    """Reports ``dense`` = step every step and ``sparse`` = 10 * step every third step (like a periodic check)."""

    def __init__(self, crash_at: int = 0) -> None:
        self.step, self.crash_at = 0, crash_at

    def update(self, _batch: object) -> dict[str, torch.Tensor]:
        self.step += 1
        if self.step == self.crash_at:
            raise KeyboardInterrupt("killed")
        out = {"dense": torch.tensor(float(self.step))}
        if self.step % 3 == 0:
            out["sparse"] = torch.tensor(10.0 * self.step)
        return out

    def state_dict(self) -> dict[str, int]:
        return {"step": self.step}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.step = state["step"]


class NoData:
    def sample(self) -> None:
        return None

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None:
        pass


def run(tmp_path, crash_at: int = 0, resume: bool = False) -> list[dict]:
    cfg = TrainConfig(max_steps=12, log_every=6, ckpt_every=4, eval_every=0, tensorboard=False,
                      progress=False, device="cpu")
    run = Run.open("periodic", cfg, run_dir=tmp_path / "run", resume=resume)
    try:
        train_loop(run, Periodic(crash_at), NoData())
    finally:
        run.close()
    return read_metrics(tmp_path / "run")


def test_a_metric_reported_on_some_steps_is_averaged_over_those_steps(tmp_path):
    records = [r for r in run(tmp_path) if "train/dense" in r]
    assert [r["train/dense"] for r in records] == [3.5, 9.5]  # mean of 1..6, of 7..12
    assert [r["train/sparse"] for r in records] == [45.0, 105.0]  # mean of 30, 60; of 90, 120 (not divided by 6)


def test_the_per_metric_counts_survive_a_resume(tmp_path):
    with pytest.raises(KeyboardInterrupt):
        run(tmp_path, crash_at=5)  # the checkpoint of step 4 holds the sums and counts of steps 1..4
    records = [r for r in run(tmp_path, resume=True) if "train/dense" in r]
    assert [r["train/dense"] for r in records] == [3.5, 9.5]
    assert [r["train/sparse"] for r in records] == [45.0, 105.0]


def test_a_checkpoint_from_before_per_metric_counts_resumes(tmp_path):
    with pytest.raises(KeyboardInterrupt):
        run(tmp_path, crash_at=5)
    (path,) = (tmp_path / "run" / "checkpoints").glob("step_*/state.json")
    state = json.loads(path.read_text())
    del state["__dict__"]["log_counts"]
    state["__dict__"]["log_count"] = 4  # the older format: one count for every metric
    path.write_text(json.dumps(state))
    records = [r for r in run(tmp_path, resume=True) if "train/dense" in r]
    assert [r["train/dense"] for r in records] == [3.5, 9.5]
