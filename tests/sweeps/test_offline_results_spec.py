"""The O-DICE results sweeps (configs/ablations/offline_results.yaml, odice_lambda_generated.yaml): every planned
run is a valid config, at the budget the README promises, on datasets the Makefile knows how to make."""

from __future__ import annotations

import re

import pytest
from conftest import REPO

from rlcore.algorithm import ALGORITHMS
from rlcore.config import load_config
from rlcore.sweep.plan import plan
from rlcore.sweep.spec import load_spec

RESULTS = REPO / "configs/ablations/offline_results.yaml"
LAMBDA = REPO / "configs/ablations/odice_lambda_generated.yaml"


def _configs(spec_path, tmp_path):
    """(cell name, resolved config) of every run the spec plans, loaded as `rlcore train` would load it."""
    spec, base, algo = load_spec(spec_path)
    out = []
    for run in plan(spec, base, algo, tmp_path):
        argv = run.argv
        assert argv[:3] == ["train", argv[1], "--config"]
        overrides = [argv[i + 1] for i, token in enumerate(argv) if token == "--set"]
        out.append((run.cell, load_config(ALGORITHMS.get(argv[1]).config, argv[3], overrides=overrides, algo=argv[1])))
    return out


@pytest.mark.parametrize("spec_path", [RESULTS, LAMBDA], ids=["offline_results", "odice_lambda_generated"])
def test_every_run_is_valid_and_at_the_promised_budget(spec_path, tmp_path):
    makefile_targets = set(re.findall(r"^(data/[\w.-]+\.hdf5):", (REPO / "Makefile").read_text(), re.M))
    for cell, cfg in _configs(spec_path, tmp_path):
        assert cfg.max_steps >= 50_000 and cfg.eval_every == 5000 and cfg.eval_episodes == 10, cell
        assert cfg.compile and cfg.ckpt_every <= 5000 and cfg.threads == 1, cell
        assert cfg.dataset in makefile_targets, f"{cell}: no Makefile rule makes {cfg.dataset}"


def test_results_compare_odice_iql_bc_on_every_dataset_with_two_seeds(tmp_path):
    configs = _configs(RESULTS, tmp_path)
    cells = {name for name, _ in configs}
    datasets = {"hopper-medium", "hopper-medium-expert", "halfcheetah-medium", "walker2d-medium"}
    for d in datasets:
        assert {f"{d}/odice", f"{d}/iql", f"{d}/bc"} <= cells
    assert {name.split("/")[0] for name in cells} == datasets
    assert all(cfg.seed_list == [0, 1] for _, cfg in configs)
    rules = {name: getattr(cfg, "grad_rule", None) for name, cfg in configs}
    assert rules["hopper-medium/odice"] == "orthogonal" and rules["hopper-medium/semi-dice"] == "semi"
    # every dataset is scored against its own D4RL task
    assert all(cfg.dataset == f"data/{name.split('/')[0]}.hdf5" and cfg.task == f"{name.split('/')[0]}-v2"
               for name, cfg in configs)


def test_lambda_sweep_matches_the_results_budget(tmp_path):
    main = dict(_configs(RESULTS, tmp_path / "a"))["hopper-medium/odice"]
    sweep = _configs(LAMBDA, tmp_path / "b")
    # lam 0.6 is the main sweep's own O-DICE cell (same settings, 2 seeds): together they cover 0.4-0.7
    assert sorted([main.lam] + [cfg.lam for _, cfg in sweep]) == [0.4, 0.5, 0.6, 0.7]
    for _, cfg in sweep:
        assert (cfg.eta, cfg.dataset, cfg.max_steps, cfg.policy_hidden) == (1.0, main.dataset, main.max_steps,
                                                                           main.policy_hidden)
