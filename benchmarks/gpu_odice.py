"""The O-DICE parts of the GPU check (``benchmarks/gpu_check.py``): update speed and a short learning run.

``speed``: updates/s at the reference sizes of ``benchmarks/odice.py`` (hopper shapes, twin V 256-256 + LayerNorm,
policy 1024-1024, batch 256) for 1, 5 and 10 vectorised seeds, eager, ``compile=true`` and CUDA graphs
(``torch.compile(mode="reduce-overhead")`` on every network; measured here only, not a config value), and the
reference three-backward recipe on the same device. Compiled variants are compared with an eager twin started
from the same weights over the same warm-up batches. ``learning``: O-DICE with 5 vectorised seeds on the generated
Hopper medium dataset, as many updates as the budget allows, normalised score every ``every`` updates.

Both take a recorder ``rec`` (``rec.put(key, value)`` saves a result at once; ``rec.left()`` is the seconds left
of the part's budget) and stop before their budget ends, keeping what they measured.
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path
from typing import Any

import torch
from odice import ACT, OBS, ReferenceRecipe, make_data

from rlcore.algorithms.odice import ODICE, ODICEConfig

COLUMNS = ("observations", "actions", "rewards", "next_observations", "terminals")
REPO = Path(__file__).resolve().parent.parent


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def _build(mode: str, seeds: int, device: torch.device) -> tuple[ODICE, Any]:
    """An O-DICE object for ``seeds`` seeds and its step function in ``mode`` (eager, compile, reduce-overhead)."""
    algo = ODICE(ODICEConfig(seeds=list(range(seeds)), compile=mode == "compile"), OBS, ACT, device=device)
    if mode != "reduce-overhead":
        return algo, algo.update
    torch._functorch.config.donated_buffer = False  # as compile_networks does: V(s) is backpropagated twice
    for module in algo.modules().values():
        module.compile(mode="reduce-overhead")

    def step(batch):
        torch.compiler.cudagraph_mark_step_begin()  # one training iteration per update: graph outputs may be reused
        return algo.update(batch)

    return algo, step


def _max_diff(a: ODICE, b: ODICE) -> float:
    """Largest absolute difference between the parameters of two O-DICE objects."""
    worst = 0.0
    for name, module in a.modules().items():
        other = b.modules()[name].state_dict()
        for key, value in module.state_dict().items():
            worst = max(worst, float((value - other[key]).abs().max()))
    return worst


def _reference_step(reference: ReferenceRecipe) -> Any:
    return lambda batch: reference.update(*(batch[c][0] for c in COLUMNS))


def _time(step, batches, device: torch.device, rec, max_repeats: int) -> float:
    """Median seconds per update over up to ``max_repeats`` passes over ``batches`` (fewer near the deadline)."""
    times: list[float] = []
    for _ in range(max_repeats):
        _sync(device)
        t0 = time.perf_counter()
        for b in batches:
            step(b)
        _sync(device)
        times.append((time.perf_counter() - t0) / len(batches))
        if len(times) >= 3 and rec.left() < 4 * times[-1] * len(batches) + 5:
            break
    return statistics.median(times)


def speed(rec, device: torch.device, smoke: bool) -> None:
    """Updates/s of every (mode, seeds) variant, most important first; see the module docstring."""
    n, warm, repeats = (3, 2, 2) if smoke else (50, 10, 15)
    seed_counts = (1, 2) if smoke else (1, 5, 10)
    rec.put("settings", {"obs": OBS, "act": ACT, "batch": 256, "v_hidden": [256, 256], "policy_hidden": [1024, 1024],
                         "updates_per_timing": n, "warmup_updates": warm, "device": str(device),
                         "float32_matmul_precision": torch.get_float32_matmul_precision()})
    g = torch.Generator().manual_seed(0)
    data = {k: make_data(k, n + warm, device, g) for k in seed_counts}
    plan = [("reference", 1)] + [("eager", k) for k in seed_counts]
    plan += [(mode, k) for mode in ("compile", "reduce-overhead") for k in seed_counts[:2]]
    plan += [(mode, k) for k in seed_counts[2:] for mode in ("compile", "reduce-overhead")]
    results: dict[str, dict] = {}
    warmup_estimate = {"reference": 5.0, "eager": 5.0, "compile": 40.0, "reduce-overhead": 40.0}
    for mode, k in plan:
        key = f"{mode}_{k}seeds"
        need = warmup_estimate[mode] + 5
        if rec.left() < need:
            results[key] = {"skipped": f"out of budget ({rec.left():.0f} s left, about {need:.0f} s needed)"}
            rec.put("variants", results)
            continue
        batches = data[k]
        try:
            t0 = time.perf_counter()
            out: dict[str, Any] = {"mode": mode, "seeds": k}
            if mode == "reference":
                step = _reference_step(ReferenceRecipe(device))
                for b in batches[:warm]:
                    step(b)
            else:
                algo, step = _build(mode, k, device)
                twin = ODICE(ODICEConfig(seeds=list(range(k))), OBS, ACT, device=device) if mode != "eager" else None
                for b in batches[:warm]:
                    step(b)
                    if twin is not None:
                        twin.update(b)
                if twin is not None:
                    out[f"max_abs_param_diff_vs_eager_after_{warm}_updates"] = _max_diff(algo, twin)
            _sync(device)
            out["warmup_s"] = round(time.perf_counter() - t0, 2)
            warmup_estimate[mode] = out["warmup_s"]
            seconds = _time(step, batches[warm:], device, rec, repeats)
            out.update(updates_per_s=round(1 / seconds, 2), seed_updates_per_s=round(k / seconds, 2),
                       ms_per_update=round(1000 * seconds, 4), projected_1M_updates_min=round(1e6 * seconds / 60, 2))
            results[key] = out
        except Exception as e:  # one variant failing (e.g. CUDA graphs refusing the update) must not stop the rest
            results[key] = {"mode": mode, "seeds": k, "error": f"{type(e).__name__}: {str(e)[:400]}"}
        rec.put("variants", results)
        rec.put("summary", _summary(results, seed_counts))


def _summary(results: dict[str, dict], seed_counts: tuple[int, ...]) -> dict[str, float]:
    """Ratios the goals are stated in: speed-up over the reference recipe, cost of K seeds over one seed."""
    ms = {key: r["ms_per_update"] for key, r in results.items() if "ms_per_update" in r}
    out: dict[str, float] = {}
    ref = ms.get("reference_1seeds")
    for mode in ("eager", "compile", "reduce-overhead"):
        one = ms.get(f"{mode}_1seeds")
        if one is None:
            continue
        if ref is not None:
            out[f"{mode}_speedup_vs_reference"] = round(ref / one, 3)
        for k in seed_counts[1:]:
            if f"{mode}_{k}seeds" in ms:
                out[f"{mode}_seeds{k}_cost_vs_1"] = round(ms[f"{mode}_{k}seeds"] / one, 3)
    return out


def learning(rec, device: torch.device, smoke: bool, dataset: Path) -> None:
    """O-DICE on the generated Hopper medium data until the budget ends; see the module docstring."""
    from rlcore.algorithms.offline.data import prepare_data
    from rlcore.algorithms.offline.evaluation import make_evaluator
    from rlcore.config import load_config
    from rlcore.envs.offline import DatasetSampler

    if not dataset.is_file():
        rec.put("skipped", f"dataset {dataset} not found: make it with `make data/hopper-medium.hdf5` and bring it")
        return
    seeds, every, chunk, episodes = ([0, 1], 100, 20, 1) if smoke else ([0, 1, 2, 3, 4], 20_000, 1000, 10)
    preset = REPO / "configs" / "odice" / "hopper-medium-generated.yaml"
    cfg = load_config(ODICEConfig, preset, algo="odice", values={
        "dataset": str(dataset), "seeds": seeds, "device": str(device), "eval_episodes": episodes})
    data = prepare_data(cfg, None, progress=False, device=device)
    algo = ODICE(cfg, data.dataset.obs_dim, data.dataset.act_dim, device=device)
    sampler = DatasetSampler(data.dataset, cfg.batch_size, cfg.seed_list, device)
    evaluate = make_evaluator(cfg, data, device)
    rec.put("settings", {"preset": preset.name, "dataset": dataset.name, "transitions": len(data.dataset),
                         "seeds": seeds, "eval_every": every, "eval_episodes": episodes, "device": str(device),
                         "behaviour_score": data.behaviour_score()})
    curve: list[dict[str, Any]] = []
    steps, train_s, eval_s, chunk_s = 0, 0.0, 15.0 if not smoke else 5.0, 0.0

    def evaluation(metrics: dict[str, torch.Tensor]) -> None:
        nonlocal eval_s
        t0 = time.perf_counter()
        scores = evaluate(algo)
        eval_s = time.perf_counter() - t0
        curve.append({"step": steps, "normalized_score": round(scores["eval/normalized_score"], 2),
                      "per_seed": [round(scores.get(f"eval/normalized_score/seed{s}", float("nan")), 2)
                                   for s in seeds],
                      "eval_s": round(eval_s, 1), "train_s": round(train_s, 1),
                      **{k: round(float(v), 4) for k, v in metrics.items() if k in ("v_loss", "v_mean",
                                                                                   "weight_nonzero", "policy_loss")}})
        rec.put("curve", curve)

    metrics: dict[str, torch.Tensor] = {}
    while rec.left() > eval_s + 2 * chunk_s + 3:
        t0 = time.perf_counter()
        for _ in range(min(chunk, every - steps % every)):
            metrics = algo.update(sampler.sample())
            steps += 1
        _sync(device)
        chunk_s = time.perf_counter() - t0
        train_s += chunk_s
        rec.put("progress", {"updates": steps, "train_s": round(train_s, 2),
                             "updates_per_s": round(steps / train_s, 1)})
        if steps % every == 0:
            evaluation(metrics)
    if steps and (not curve or curve[-1]["step"] != steps) and rec.left() > eval_s + 2:
        evaluation(metrics)
