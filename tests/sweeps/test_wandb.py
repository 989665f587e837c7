"""W&B settings of runs and sweeps, through a fake ``wandb`` module that records what ``wandb.init`` receives."""

from __future__ import annotations

import sys
import types

import pytest
import yaml
from conftest import REPO

from rlcore.cli import main
from rlcore.logging import wandb_init_kwargs
from rlcore.sweep.plan import plan
from rlcore.sweep.spec import load_spec

TINY = {"max_steps": 20, "eval_every": 20, "ckpt_every": 20, "log_every": 10, "tensorboard": False}


@pytest.fixture
def fake_wandb(monkeypatch):
    """A stand-in ``wandb`` module (the package is not installed here); returns the list of ``init`` kwargs."""
    calls: list[dict] = []
    module = types.ModuleType("wandb")

    class FakeRun:
        def __init__(self):
            self.logged = []

        def log(self, values, step):
            self.logged.append((step, dict(values)))

        def finish(self):
            pass

    def init(**kwargs):
        calls.append(kwargs)
        return FakeRun()

    module.init = init
    monkeypatch.setitem(sys.modules, "wandb", module)
    return calls


def _spec(tmp_path, **fields):
    spec = {"base": str(REPO / "configs/toy/demo.yaml"), "set": TINY, "seeds": [0, 1], "metric": "eval/score",
            "backend": "sequential", **fields}
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


def test_sweep_cells_share_a_group_and_get_distinct_ids(tmp_path, fake_wandb):
    # two cells whose last folder names are equal ("bc"): ids built from the folder name alone would collide
    spec = _spec(tmp_path, set={**TINY, "wandb": True, "wandb_project": "proj", "wandb_entity": "team"},
                 cells=[{"name": "hopper/bc"}, {"name": "walker/bc"}])
    out = tmp_path / "my-sweep"
    assert main(["ablate", str(spec), "--out", str(out), "--no-report"]) == 0
    assert len(fake_wandb) == 4
    ids = [c["id"] for c in fake_wandb]
    assert len(set(ids)) == 4, ids
    assert {c["group"] for c in fake_wandb} == {"my-sweep"}
    assert {(c["project"], c["entity"]) for c in fake_wandb} == {("proj", "team")}
    expected = [f"my-sweep-{cell}-bc-seed_{seed}" for cell in ("hopper", "walker") for seed in (0, 1)]
    assert [i.rsplit("-", 1)[0] for i in ids] == expected
    assert all(len(i) <= 64 and len(i.rsplit("-", 1)[1]) == 8 for i in ids)
    assert [c["name"] for c in fake_wandb] == [f"{cell}/bc/seed_{s}" for cell in ("hopper", "walker") for s in (0, 1)]
    assert all(c["resume"] == "allow" and c["config"]["wandb_group"] == "my-sweep" for c in fake_wandb)
    # the id depends only on where the run lives: a resumed run continues its W&B run
    again = wandb_init_kwargs(out / "hopper" / "bc" / "seed_1", {"wandb_group": "my-sweep"})
    assert again["id"] == ids[1]


def test_plan_names_the_sweep_group_only_for_runs_that_log_to_wandb(tmp_path):
    def argv(**fields):
        spec, base, algo = load_spec(_spec(tmp_path, **fields))
        return plan(spec, base, algo, tmp_path / "sw")[0].argv

    assert not any(a.startswith("wandb_group=") for a in argv())
    assert "wandb_group=sw" in argv(set={**TINY, "wandb": True})
    assert "wandb_group=mine" in argv(set={**TINY, "wandb": True, "wandb_group": "mine"})
    assert "wandb_group=sw" in argv(cells=[{"name": "a", "set": {"wandb": True}}])


def test_a_single_run_takes_project_entity_and_group_from_its_config(tmp_path, fake_wandb):
    run_dir = tmp_path / "solo"
    args = ["train", "toy", "--config", str(REPO / "configs/toy/demo.yaml"), "--run-dir", str(run_dir),
            "--set", "progress=false", "--set", "wandb=true", "--set", "wandb_entity=team", "--set", "wandb_group=g"]
    args += [f"--set={k}={v}" for k, v in TINY.items()]
    assert main(args) == 0
    (call,) = fake_wandb
    assert (call["project"], call["entity"], call["group"], call["id"]) == ("rlcore", "team", "g", "solo")
    assert call["dir"] == str(run_dir)
