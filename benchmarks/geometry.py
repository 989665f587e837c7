"""Benchmark rlcore.geometry's hot paths against the brute-force way to get the same numbers, in one run.

1. G2RL's Phi (``token_stats``: one chunked pass over the LM-head distribution, no backward) against per-sequence
   autograd to the hidden states (T x d log p(y_t) / d h_t averaged over the response). Timed twice: from hidden
   states (the LM head is recomputed, chunk by chunk) and from logits the caller already has (the G2RL trainer's
   old-policy pass, where the HF forward produced them). Also timed: the plain full-softmax log-prob + entropy
   pass every GRPO trainer runs, to show what Phi adds on top of it.
2. ``per_sample_grad_gram`` (hooks, ghost or explicit per layer) against materialised per-sample gradients
   (``per_sample_grads``, torch.func) followed by their Gram matrix, on a flat-input MLP (O-DICE-sized value net)
   and on a stack of residual MLP blocks over token sequences.

Times are medians over ``--repeats`` runs after one warm-up, the two sides interleaved so machine load hits both.
Peak extra memory is measured, not estimated: each method runs in a fresh process that builds its inputs, runs
once to warm up, resets the kernel's peak-RSS mark (``/proc/self/clear_refs``), runs again and reports VmHWM minus
the RSS before the run; glibc is told to give every block over 64 KiB back to the OS
(``MALLOC_MMAP_THRESHOLD_``) so freed tensors do not hide later peaks. The last line is one JSON object.

    python benchmarks/geometry.py --quick      # about 2 minutes on 2 cores
    python benchmarks/geometry.py --repeats 1  # the issue's size, B=64 L=512 d=1024 V=32k (about 20 minutes)
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from functools import partial

import torch
from torch import nn

from rlcore.geometry import default_chunk_size, per_sample_grad_gram, per_sample_grads, token_stats

PHI_SIZES = {"quick": {"B": 16, "L": 128, "d": 1024, "V": 32768}, "full": {"B": 64, "L": 512, "d": 1024, "V": 32768}}
GRAM_SIZES = {
    "quick": {"mlp": {"B": 256, "T": 0, "d_in": 17, "width": 256, "blocks": 2},
              "seq": {"B": 32, "T": 16, "d_in": 256, "width": 1024, "blocks": 4}},
    "full": {"mlp": {"B": 256, "T": 0, "d_in": 17, "width": 256, "blocks": 2},
             "seq": {"B": 32, "T": 16, "d_in": 512, "width": 2048, "blocks": 4}},
}
TEMPERATURE = 1.0
MB = 2**20


# ----------------------------------------------------------------------------------------------- Phi, 3 ways
def phi_inputs(B: int, L: int, d: int, V: int, with_logits: bool = False) -> dict:
    gen = torch.Generator().manual_seed(0)
    hidden = torch.randn(B, L, d, generator=gen)
    weight = torch.randn(V, d, generator=gen) / d**0.5
    tokens = torch.randint(0, V, (B, L), generator=gen)
    mask = torch.arange(L) < torch.randint(L // 2, L + 1, (B, 1), generator=gen)  # ragged responses
    inputs = {"hidden": hidden, "weight": weight, "tokens": tokens, "mask": mask}
    if with_logits:
        inputs["logits"] = hidden @ weight.T
    return inputs


def phi_autograd(hidden, weight, tokens, mask, **_) -> torch.Tensor:
    """The brute-force way: one backward per sequence, T * mean_t d log p(y_t) / d h_t."""
    rows = []
    for b in range(hidden.shape[0]):
        h = hidden[b].detach().requires_grad_(True)
        logp = torch.log_softmax(h @ weight.T / TEMPERATURE, -1).gather(-1, tokens[b, :, None]).squeeze(-1)
        (grad,) = torch.autograd.grad((logp * mask[b]).sum(), h)
        rows.append(TEMPERATURE * grad.sum(0) / mask[b].sum().clamp_min(1))
    return torch.stack(rows)


def phi_from_hidden(hidden, weight, tokens, mask, **_) -> torch.Tensor:
    with torch.no_grad():
        return token_stats(hidden, tokens, mask, weight, temperature=TEMPERATURE).features


def phi_from_logits(weight, tokens, mask, logits, **_) -> torch.Tensor:
    with torch.no_grad():
        return token_stats(None, tokens, mask, weight, logits=logits, temperature=TEMPERATURE).features


def plain_logprob_entropy(tokens, mask, logits, **_) -> torch.Tensor:
    """What a GRPO old-policy pass computes anyway, the usual way (one sequence at a time, like TRL), no Phi."""
    with torch.no_grad():
        rows = []
        for b in range(logits.shape[0]):
            logp = torch.log_softmax(logits[b] / TEMPERATURE, -1)
            token_logp = logp.gather(-1, tokens[b, :, None]).squeeze(-1)
            entropy = -(logp.exp() * logp).sum(-1)
            rows.append((token_logp + entropy) * mask[b])
        return torch.stack(rows)


PHI_METHODS: dict[str, tuple[Callable, bool]] = {  # name -> (function, needs logits)
    "autograd": (phi_autograd, False),
    "from_hidden": (phi_from_hidden, False),
    "from_logits": (phi_from_logits, True),
    "plain_logprob_entropy": (plain_logprob_entropy, True),
}


# ------------------------------------------------------------------------------------- Gram, 2 ways
class ResidualMLP(nn.Module):
    """``blocks`` residual blocks Linear(d, width) -> tanh -> Linear(width, d) after an input Linear."""

    def __init__(self, d_in: int, width: int, blocks: int):
        super().__init__()
        d = width // 4
        self.inp = nn.Linear(d_in, d)
        self.ups = nn.ModuleList(nn.Linear(d, width) for _ in range(blocks))
        self.downs = nn.ModuleList(nn.Linear(width, d) for _ in range(blocks))
        self.out = nn.Linear(d, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.inp(x)
        for up, down in zip(self.ups, self.downs):
            h = h + down(torch.tanh(up(h)))
        return self.out(h).squeeze(-1)


def regression_loss(model: nn.Module, batch: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
    x, y = batch
    err = (model(x) - y) ** 2
    return err if err.ndim == 1 else err.sum(1)  # sequences: sum over tokens


def gram_inputs(B: int, T: int, d_in: int, width: int, blocks: int) -> dict:
    torch.manual_seed(0)
    model = ResidualMLP(d_in, width, blocks)
    shape = (B, d_in) if T == 0 else (B, T, d_in)
    batch = (torch.randn(shape), torch.randn(shape[:-1]))
    return {"model": model, "batch": batch}


def gram_materialised(model, batch) -> torch.Tensor:
    grads = per_sample_grads(model, regression_loss, batch)
    flat = [g.reshape(g.shape[0], -1) for g in grads.values()]
    return sum(f @ f.T for f in flat)  # layer by layer: no extra (B, P) copy beyond the gradients themselves


def gram_hooks(model, batch) -> torch.Tensor:
    return per_sample_grad_gram(model, regression_loss, batch)


GRAM_METHODS = {"materialised": gram_materialised, "hooks": gram_hooks}


# ------------------------------------------------------------------------------------------- measuring
def interleaved_medians(fns: dict[str, Callable[[], object]], repeats: int) -> tuple[dict[str, float], dict]:
    """Median seconds per function over ``repeats`` interleaved rounds, and each function's warm-up output."""
    outputs = {name: fn() for name, fn in fns.items()}
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(ts) for name, ts in times.items()}, outputs


def relative_error(value: torch.Tensor, reference: torch.Tensor) -> float:
    return float((value - reference).abs().max() / reference.abs().max())


def _status_kb(key: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"{key} not in /proc/self/status")


def probe_memory(kind: str, method: str, sizes: dict) -> int:
    """In this (fresh) process: peak RSS growth in bytes of one run of ``method``, inputs excluded."""
    if kind == "phi":
        fn, needs_logits = PHI_METHODS[method]
        inputs = phi_inputs(**sizes, with_logits=needs_logits)
    else:
        fn, inputs = GRAM_METHODS[method], gram_inputs(**sizes)
    fn(**inputs)  # warm-up: lazy initialisation is not the method's memory
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # reset the peak-RSS mark to the current RSS
    before = _status_kb("VmRSS")
    fn(**inputs)
    return (_status_kb("VmHWM") - before) * 1024


def measure_memory(kind: str, method: str, sizes: dict, threads: int) -> float | None:
    """Peak extra memory in MiB from a fresh subprocess, or None where the kernel interface is missing."""
    env = {**os.environ, "MALLOC_MMAP_THRESHOLD_": "65536"}
    cmd = [sys.executable, __file__, "--probe", kind, method, json.dumps(sizes), "--threads", str(threads)]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        print(f"  memory probe {kind}/{method} failed: {proc.stderr.strip().splitlines()[-1:]}", file=sys.stderr)
        return None
    return round(int(proc.stdout.strip().splitlines()[-1]) / MB, 1)


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def bench_phi(sizes: dict, repeats: int, threads: int) -> dict:
    B, L, V = sizes["B"], sizes["L"], sizes["V"]
    log(f"Phi: B={B} L={L} d={sizes['d']} V={V}, {repeats} repeats")
    inputs = phi_inputs(**sizes, with_logits=True)
    times, out = interleaved_medians({name: partial(fn, **inputs) for name, (fn, _) in PHI_METHODS.items()}, repeats)
    errors = {name: relative_error(out[name], out["autograd"]) for name in ("from_hidden", "from_logits")}
    del inputs
    memory = {name: measure_memory("phi", name, sizes, threads) for name in PHI_METHODS}
    blv_mb = B * L * V * 4 / MB
    result = {
        **sizes, "chunk": default_chunk_size(B, V, torch.device("cpu")),
        "seconds": {k: round(v, 3) for k, v in times.items()},
        "speedup_from_hidden": round(times["autograd"] / times["from_hidden"], 2),
        "speedup_from_logits": round(times["autograd"] / times["from_logits"], 2),
        "time_vs_plain_logprob_entropy": round(times["from_logits"] / times["plain_logprob_entropy"], 2),
        "max_rel_error": errors,
        "peak_extra_mb": memory,
        "fp32_BLV_mb": round(blv_mb, 1),
    }
    log(f"  {json.dumps(result)}")
    return result


def bench_gram(name: str, sizes: dict, repeats: int, threads: int) -> dict:
    log(f"Gram ({name}): {sizes}, {repeats} repeats")
    inputs = gram_inputs(**sizes)
    params = sum(p.numel() for p in inputs["model"].parameters())
    times, out = interleaved_medians({k: partial(fn, **inputs) for k, fn in GRAM_METHODS.items()}, repeats)
    del inputs
    memory = {k: measure_memory("gram", k, sizes, threads) for k in GRAM_METHODS}
    result = {
        **sizes, "params": params, "materialised_grads_mb": round(sizes["B"] * params * 4 / MB, 1),
        "seconds": {k: round(v, 4) for k, v in times.items()},
        "speedup": round(times["materialised"] / times["hooks"], 2),
        "peak_extra_mb": memory,
        "memory_ratio": (round(memory["materialised"] / max(memory["hooks"], 0.1), 1)
                         if None not in memory.values() else None),
        "max_rel_error": relative_error(out["hooks"], out["materialised"]),
    }
    log(f"  {json.dumps(result)}")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes, about 2 minutes on 2 cores")
    parser.add_argument("--repeats", type=int, default=None, help="timed runs per method (default 3 quick, 5 full)")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch intra-op threads (default 1: on a shared machine a descheduled thread stalls "
                             "every multi-threaded kernel, which makes timings erratic)")
    parser.add_argument("--probe", nargs=3, metavar=("KIND", "METHOD", "SIZES"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.probe:
        kind, method, sizes = args.probe
        print(probe_memory(kind, method, json.loads(sizes)))
        return

    mode = "quick" if args.quick else "full"
    repeats = args.repeats or (3 if args.quick else 5)
    start = time.perf_counter()
    phi = bench_phi(PHI_SIZES[mode], repeats, args.threads)
    gram = {name: bench_gram(name, sizes, repeats, args.threads) for name, sizes in GRAM_SIZES[mode].items()}
    summary = {
        "benchmark": "geometry", "mode": mode, "threads": args.threads, "repeats": repeats,
        "phi_speedup_from_hidden": phi["speedup_from_hidden"],
        "phi_speedup_from_logits": phi["speedup_from_logits"],
        "phi_time_vs_plain_logprob_entropy": phi["time_vs_plain_logprob_entropy"],
        "gram_speedup": {name: g["speedup"] for name, g in gram.items()},
        "gram_memory_ratio": {name: g["memory_ratio"] for name, g in gram.items()},
        "phi": phi, "gram": gram,
        "memory_method": "peak RSS growth (VmHWM after a /proc/self/clear_refs reset) of one run in a fresh process, "
                         "inputs excluded, MALLOC_MMAP_THRESHOLD_=65536",
        "wall_s": round(time.perf_counter() - start, 1),
    }
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
