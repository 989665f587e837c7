"""The update loop every algorithm reuses: sample -> update -> log / evaluate / checkpoint, with exact resume.

An algorithm provides ``update(batch) -> dict[str, Tensor]`` and ``state_dict()`` / ``load_state_dict()``; a
sampler provides ``sample()`` and its own ``state_dict()`` / ``load_state_dict()``. The loop owns the step
counter, metric averaging, the non-finite guard, evaluation on a schedule, "last"/"best" bookkeeping and
checkpoints that restore algorithm, sampler and global RNG state, so that a killed or stopped and resumed CPU run
ends with bit-identical parameters. In a multi-process run every process runs the loop (the algorithm synchronises them)
and only the main process (``run.is_main``) writes metrics and checkpoints.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Protocol

import torch

from rlcore.errors import NonFiniteError
from rlcore.logging import Progress, announce
from rlcore.run import Run
from rlcore.runtime import rng_state, set_rng_state
from rlcore.stop import StopSignals


class Algorithm(Protocol):
    def update(self, batch: Any) -> Mapping[str, torch.Tensor]: ...
    def state_dict(self) -> dict[str, Any]: ...
    def load_state_dict(self, state: Mapping[str, Any]) -> None: ...


class Sampler(Protocol):
    def sample(self) -> Any: ...
    def state_dict(self) -> dict[str, Any]: ...
    def load_state_dict(self, state: Mapping[str, Any]) -> None: ...


def namespaced(metrics: Mapping[str, Any], namespace: str) -> dict[str, Any]:
    """Prefix keys that have no namespace yet: ``v_loss`` -> ``train/v_loss``."""
    return {(k if "/" in k else f"{namespace}/{k}"): v for k, v in metrics.items()}


class NonFiniteGuard:
    """Remembers, on the device and without host syncs, the first step at which any metric was NaN/inf."""

    def __init__(self) -> None:
        self.keys: list[str] | None = None
        self.first_bad_step: torch.Tensor | None = None
        self.bad_keys: torch.Tensor | None = None

    def observe(self, step: int, metrics: Mapping[str, torch.Tensor]) -> None:
        keys = [k for k, v in metrics.items() if isinstance(v, torch.Tensor)]
        if not keys:
            return
        values = torch.stack([metrics[k].detach().reshape(()).float() for k in keys])
        nonfinite = ~torch.isfinite(values)
        if self.keys != keys or self.first_bad_step is None:
            self.check()  # a change of metric set: settle what we have before resetting
            self.keys = keys
            self.first_bad_step = torch.full((), -1, dtype=torch.long, device=values.device)
            self.bad_keys = torch.zeros(len(keys), dtype=torch.bool, device=values.device)
        first = nonfinite.any() & (self.first_bad_step < 0)
        self.first_bad_step = torch.where(first, torch.full_like(self.first_bad_step, step), self.first_bad_step)
        self.bad_keys = torch.where(first, nonfinite, self.bad_keys)

    def check(self, where: str = "") -> None:
        """Raise NonFiniteError (one host sync) if a non-finite value was seen since the start."""
        if self.first_bad_step is None or self.keys is None:
            return
        step = int(self.first_bad_step)
        if step >= 0:
            names = [k for k, bad in zip(self.keys, self.bad_keys.tolist()) if bad]
            raise NonFiniteError(f"non-finite value in {', '.join(names)} at step {step}{where}")


def train_loop(
    run: Run,
    algo: Algorithm,
    sampler: Sampler,
    evaluate: Callable[[Algorithm], Mapping[str, Any]] | None = None,
    best_key: str | None = None,
    console_keys: tuple[str, ...] = (),
    extra_state: Callable[[], dict[str, Any]] | None = None,
    save_best: Callable[[Path], None] | None = None,
    best_dir: Path | None = None,
    stop: StopSignals | None = None,
    agree: Callable[[list[bool]], list[bool]] | None = None,
) -> dict[str, Any]:
    """Run ``run.config.max_steps`` updates (resuming from the latest checkpoint if there is one).

    ``evaluate(algo)`` returns metrics (keys without a namespace go under ``eval/``); ``best_key`` names the one
    that decides the "best" result. At each new best, ``save_best(dir)`` writes the policy (and what acting with it
    needs) into a directory that becomes ``best_dir`` (default ``checkpoints/best``). ``extra_state()`` returns more
    JSON/tensor state to store in each checkpoint (e.g. observation statistics needed for evaluation).

    A checkpoint is written every ``ckpt_every`` steps, once ``ckpt_minutes`` have passed since the last one, at the
    last step, and when ``stop`` is requested: the loop then ends after the current update. ``agree(flags)`` makes
    the processes of a distributed run take those decisions together (True where any process says so).

    Returns the summary: status (finished or stopped), the step reached, last and best evaluation, wall time, and
    ``best_mean``: ``{"metric", "value", "step"}`` of the best evaluation of ``best_key`` (for a run of several
    seeds, ``best_key`` is their mean: the best MEAN over seeds at one step, the one meaning of "best").
    """
    cfg = run.config
    start = 0
    sums: dict[str, torch.Tensor] = {}  # metric sums since the last log event (checkpointed: logs resume exactly)
    counts: dict[str, int] = {}  # steps that logged each metric (a metric such as a periodic check may skip steps)
    best: dict[str, Any] | None = None
    last: dict[str, Any] | None = None
    resumed = run.checkpoints.load_latest()
    if resumed is not None:
        start, state = resumed
        algo.load_state_dict(state["algo"])
        sampler.load_state_dict(state["sampler"])
        set_rng_state(state["rng"])
        best, last = state.get("best"), state.get("last")
        sums = state["log_sums"]
        counts = state["log_counts"] if "log_counts" in state else {k: state["log_count"] for k in sums}  # older runs
        on_disk = run.checkpoints.best  # the best policy ever evaluated here, maybe after this checkpoint
        if on_disk is not None and "metrics" in on_disk:
            best = {"step": on_disk["step"], "metrics": on_disk["metrics"]}

    guard = NonFiniteGuard()
    progress = Progress(cfg.max_steps, initial=start, desc=run.algo, keys=console_keys,
                        enabled=cfg.progress and run.is_main)
    if start and run.is_main:
        announce(f"resumed {run.dir} from step {start}")
    tick, tick_step = time.perf_counter(), start
    t0 = last_save = time.perf_counter()

    def last_good() -> str:
        step = run.checkpoints.latest_step()
        where = f"{run.checkpoints.path(step)} is" if step is not None else "no checkpoint was"
        return f"; {where} kept as the last good state"

    def save(step: int) -> None:
        guard.check(last_good())
        if not run.is_main:  # the other processes of a distributed run hold the same state
            return
        state = {"algo": algo.state_dict(), "sampler": sampler.state_dict(), "rng": rng_state(), "step": step,
                 "best": best, "last": last, "log_sums": sums, "log_counts": counts}
        if extra_state is not None:
            state["extra"] = extra_state()
        run.checkpoints.save(step, state)

    step = start
    try:
        for step in range(start + 1, cfg.max_steps + 1):
            metrics = algo.update(sampler.sample())
            guard.observe(step, metrics)
            for k, v in metrics.items():
                sums[k] = sums[k] + v.detach() if k in sums else v.detach().clone()
                counts[k] = counts.get(k, 0) + 1
            progress.update()

            if step % cfg.log_every == 0 or step == cfg.max_steps:
                guard.check(last_good())
                now = time.perf_counter()
                logged = namespaced({k: v / counts[k] for k, v in sums.items()}, "train")
                logged["time/steps_per_s"] = (step - tick_step) / max(now - tick, 1e-9)
                progress.show(run.logger.log(step, logged))
                sums, counts, tick, tick_step = {}, {}, now, step

            is_last = step == cfg.max_steps
            if evaluate is not None and ((cfg.eval_every and step % cfg.eval_every == 0) or is_last):
                last = {"step": step, "metrics": run.logger.log(step, namespaced(evaluate(algo), "eval"))}
                progress.show(last["metrics"])
                score = last["metrics"].get(best_key) if best_key else None
                if score is not None and math.isfinite(score) and (best is None or score > best["metrics"][best_key]):
                    guard.check(last_good())  # never call a diverged policy the best
                    best = last
                    if run.is_main:
                        run.checkpoints.save_best(step, best_key, last["metrics"], save_best, best_dir)
            flags = [bool(cfg.ckpt_minutes) and time.perf_counter() - last_save >= 60 * cfg.ckpt_minutes,
                     stop is not None and stop.requested]
            due, stopping = agree(flags) if agree is not None else flags
            if step % cfg.ckpt_every == 0 or is_last or due or stopping:
                save(step)
                last_save = time.perf_counter()
            if stopping and not is_last:
                break
    finally:
        progress.close()

    return {"status": "finished" if step >= cfg.max_steps else "stopped", "step": step, "steps": cfg.max_steps,
            "wall_s": round(time.perf_counter() - t0, 3), "resumed_from": start, "last": last, "best": best,
            "best_key": best_key, "best_mean": None if best is None or best_key is None else
            {"metric": best_key, "value": best["metrics"][best_key], "step": best["step"]}}
