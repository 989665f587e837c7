"""The GPU check: CUDA correctness, O-DICE speed and learning, G2RL at Qwen3-0.6B size, in one JSON file.

Made for a bare GPU machine with only ``python3`` (PyTorch, transformers, accelerate, peft, ...; no venv, no
network). The wheels it lacks travel in ``.whl/`` (``make gpu-wheels`` here) and are installed at the start with

    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target <tmp>/site .whl/*.whl

into a temporary folder that, with the repository, goes on PYTHONPATH of every part. Then, each part in its own
process with its own time budget (it stops in time and keeps what it measured; one that overruns is killed and its
results so far are kept), about 5 minutes in all on one H200:

- ``correctness``: ``pytest -m gpu tests/gpu`` (CUDA against CPU, vectorised seeds, bf16 Phi), result counts;
- ``odice_speed``, ``odice_learning``: see ``benchmarks/gpu_odice.py``; ``g2rl``: see ``benchmarks/gpu_g2rl.py``.

Writes ``$OUT/gpu-check.json`` (or ``./gpu-check.json``; ``--out`` to choose). Without CUDA it says so, runs the
CPU half (the wheel list resolves; the gpu tests are collected and skip) and exits 0; ``--cpu-smoke`` instead runs
every part on CPU at small sizes for a few steps, to show the script works end to end before a GPU runs it.

    make gpu-check            # or: python3 benchmarks/gpu_check.py [--cpu-smoke] [--budget g2rl=120]
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback
import xml.etree.ElementTree as ET
from pathlib import Path

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
BUDGETS = {"correctness": 25, "odice_speed": 60, "odice_learning": 120, "g2rl": 85}  # seconds; under 5 min in all
SMOKE_BUDGETS = {"correctness": 90, "odice_speed": 240, "odice_learning": 30, "g2rl": 180}  # on 2 CPU cores
GRACE_S = 3  # a part that ignores its deadline is killed this long after it
MODES = ("eager", "compile", "reduce-overhead")
GOALS = [  # (section, path in it, goal, "<=" or ">="): the targets for the GPU numbers
    *[("odice_speed", ("summary", f"{m}_speedup_vs_reference"), 5.0, ">=") for m in MODES],
    *[("odice_speed", ("summary", f"{m}_seeds5_cost_vs_1"), 1.5, "<=") for m in MODES],
    *[("odice_speed", ("variants", f"{m}_1seeds", "projected_1M_updates_min"), 10.0, "<=") for m in MODES],
    ("g2rl", ("variants", "full", "g2rl_over_grpo"), 1.05, "<="),
]


def write_json(path: Path, data: dict) -> None:
    """Atomic write: temp file, fsync, rename (a kill never leaves half a file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(data, f, indent=1)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


class Recorder:
    """A part's results, saved to ``path`` at every ``put``; ``left()`` is the seconds until its deadline."""

    def __init__(self, path: Path, deadline: float):
        self.path, self.deadline, self.data = path, deadline, {}

    def put(self, key: str, value) -> None:
        self.data[key] = value
        write_json(self.path, self.data)

    def left(self) -> float:
        return self.deadline - time.time()


def machine() -> dict:
    import torch

    info = {"python": platform.python_version(), "torch": torch.__version__, "cuda_available": False,
            "cpu_count": os.cpu_count(), "platform": platform.platform()}
    if torch.cuda.is_available():
        p = torch.cuda.get_device_properties(0)
        info.update(cuda_available=True, cuda=torch.version.cuda, device=p.name, capability=f"{p.major}.{p.minor}",
                    memory_gib=round(p.total_memory / 2**30, 1), multiprocessors=p.multi_processor_count)
    return info


def install_wheels(work: Path) -> tuple[dict, Path | None]:
    """Install ``.whl/*.whl`` into ``work/site`` when a pinned package is missing here; returns (report, site)."""
    from importlib import metadata

    from gpu_wheels import pins

    missing = []
    for name, version in pins().items():
        try:
            metadata.version(name)
        except metadata.PackageNotFoundError:
            missing.append(f"{name}=={version}")
    wheels = sorted((REPO / ".whl").glob("*.whl"))
    if not missing:
        return {"skipped": "every pinned package is installed here already"}, None
    if not wheels:
        return {"error": f"missing {', '.join(missing)} and no .whl/ folder: run `make gpu-wheels` first"}, None
    site = work / "site"
    command = [sys.executable, "-m", "pip", "install", "-q", "--disable-pip-version-check", "--no-index",
               "--no-deps", "--no-compile", "--no-cache-dir", "--upgrade", "--target", str(site), *map(str, wheels)]
    t0 = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True)
    report = {"missing_before": missing, "wheels": len(wheels), "install_s": round(time.perf_counter() - t0, 1)}
    if done.returncode:
        return {**report, "error": done.stderr[-1500:]}, None
    return report, site


def child_environment(work: Path, site: Path | None) -> dict[str, str]:
    """Environment of the parts: the wheels, rlcore (an editable install, or a folder of links to the source
    folders under their rlcore names) and benchmarks/ on PYTHONPATH; never the current folder (PYTHONSAFEPATH),
    where the source folder rlcore/ alone would shadow the package."""
    import importlib.util

    paths = [str(site)] if site is not None else []
    try:
        installed = importlib.util.find_spec("rlcore.algorithms") is not None
    except ModuleNotFoundError:
        installed = False
    if not installed:
        tree = work / "src" / "rlcore"
        tree.mkdir(parents=True)
        for entry in (REPO / "rlcore").iterdir():
            if entry.name != "__pycache__":
                (tree / entry.name).symlink_to(entry)
        (tree / "algorithms").symlink_to(REPO / "algorithms")
        (tree / "envs").symlink_to(REPO / "envs")
        paths.append(str(tree.parent))
    paths += [str(BENCH)] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    return {**os.environ, "PYTHONPATH": os.pathsep.join(paths), "PYTHONSAFEPATH": "1", "PYTHONUNBUFFERED": "1",
            "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}


def run_process(command: list[str], env: dict, budget: float, log: Path | None = None) -> tuple[int | None, float]:
    """Run ``command`` in its own process group (output to ``log``, or to ours), killed with its children
    ``GRACE_S`` after ``budget``; returns (exit code, or None when killed; seconds)."""
    t0 = time.perf_counter()
    with contextlib.ExitStack() as stack:
        sink = stack.enter_context(open(log, "w")) if log is not None else None
        proc = subprocess.Popen(command, env=env, cwd=REPO, start_new_session=True, stdout=sink,
                                stderr=subprocess.STDOUT if sink is not None else None)
        try:
            code = proc.wait(timeout=budget + GRACE_S)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            code = None
    return code, round(time.perf_counter() - t0, 1)


def correctness(env: dict, work: Path, budget: float, smoke: bool) -> dict:
    """``pytest -m gpu tests/gpu``: counts from its JUnit report, failures by name, the summary line."""
    junit, log = work / "junit.xml", work / "pytest.log"
    if smoke:
        env = {**env, "RLCORE_TEST_DEVICE": "cpu"}
    command = [sys.executable, "-m", "pytest", "-q", "-m", "gpu", "-p", "no:cacheprovider", "-rs",
               f"--junitxml={junit}", str(REPO / "tests" / "gpu")]
    code, seconds = run_process(command, env, budget, log)
    lines = log.read_text(errors="replace").strip().splitlines() if log.exists() else []
    print("\n".join(lines[-15:]))
    out = {"command": "pytest -m gpu tests/gpu", "exit_code": code, "elapsed_s": seconds,
           "summary": lines[-1] if lines else "", "device_under_test": "cpu (smoke)" if smoke else "cuda"}
    if junit.exists():
        suite = ET.parse(junit).getroot()
        suite = suite if suite.tag == "testsuite" else suite[0]
        out.update({k: int(suite.get(k, 0)) for k in ("tests", "failures", "errors", "skipped")})
        out["passed"] = out["tests"] - out["failures"] - out["errors"] - out["skipped"]
        out["failed"] = [f"{case.get('classname')}::{case.get('name')}: {bad.get('message', '')[:300]}"
                         for case in suite.iter("testcase") for bad in case if bad.tag in ("failure", "error")]
        out["skip_reasons"] = sorted({s.get("message", "") for s in suite.iter("skipped")})
    bad = code not in (0, 5) or out.get("failures") or out.get("errors")
    out["status"] = "killed at its time budget" if code is None else ("failed" if bad else "ok")
    return out


def run_part(name: str, env: dict, work: Path, budget: float, smoke: bool) -> dict:
    """One part in a child process (``--part``); its recorder file holds whatever it measured."""
    result = work / f"{name}.json"
    command = [sys.executable, str(Path(__file__).resolve()), "--part", name, "--result", str(result),
               "--deadline", str(time.time() + budget - 1)] + (["--cpu-smoke"] if smoke else [])
    code, seconds = run_process(command, env, budget)
    out = json.loads(result.read_text()) if result.exists() else {}
    status = "done" if code == 0 else ("killed at its time budget" if code is None else f"exit code {code}")
    return {"status": out.pop("status", status), "elapsed_s": seconds, "budget_s": budget, **out}


def part_main(name: str, result: Path, deadline: float, smoke: bool) -> int:
    """Child process: run part ``name`` with a recorder; an exception is recorded, not raised."""
    import torch

    rec = Recorder(result, deadline)
    device = torch.device("cpu" if smoke else "cuda")
    try:
        if name == "odice_speed":
            from gpu_odice import speed
            speed(rec, device, smoke)
        elif name == "odice_learning":
            from gpu_odice import learning
            learning(rec, device, smoke, REPO / "data" / "hopper-medium.hdf5")
        else:
            from gpu_g2rl import run
            run(rec, device.type, smoke)
        rec.put("status", "done" if rec.left() > 0 else "stopped at its time budget")
    except Exception:
        rec.put("status", "error")
        rec.put("error", traceback.format_exc()[-2000:])
    return 0


def goals(report: dict) -> dict:
    out = {}
    for section, path, goal, sense in GOALS:
        value = report.get(section, {})
        for key in path:
            value = value.get(key, {}) if isinstance(value, dict) else {}
        if isinstance(value, (int, float)):
            out[f"{section}.{'.'.join(path[1:])}"] = {"value": value, "goal": f"{sense} {goal}",
                                            "met": value >= goal if sense == ">=" else value <= goal}
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path(os.environ.get("OUT", ".")) / "gpu-check.json")
    parser.add_argument("--cpu-smoke", action="store_true", help="run every part on CPU at small sizes")
    parser.add_argument("--budget", action="append", default=[], metavar="PART=SECONDS", help="change a budget")
    parser.add_argument("--part", help=argparse.SUPPRESS)
    parser.add_argument("--result", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--deadline", type=float, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.part:
        return part_main(args.part, args.result, args.deadline, args.cpu_smoke)
    changes = {}
    for text in args.budget:
        name, _, seconds = text.partition("=")
        if name not in BUDGETS or not seconds.replace(".", "", 1).isdigit():
            parser.error(f"--budget {text}: expected PART=SECONDS with PART one of {', '.join(BUDGETS)}")
        changes[name] = float(seconds)
    budgets = {**(SMOKE_BUDGETS if args.cpu_smoke else BUDGETS), **changes}
    t0 = time.time()
    work = Path(tempfile.mkdtemp(prefix="rlcore-gpu-check-"))
    report: dict = {"check": "rlcore gpu-check", "started": datetime.datetime.now().isoformat(timespec="seconds"),
                    "machine": machine(), "budgets_s": budgets}
    cuda = report["machine"]["cuda_available"]
    report["mode"] = "cpu-smoke" if args.cpu_smoke else ("gpu" if cuda else "cpu (no CUDA device)")
    if not cuda:
        print("no CUDA device is present: " + ("running every part on CPU at small sizes (--cpu-smoke)"
                                               if args.cpu_smoke else "running the CPU half only"))
    try:
        from gpu_wheels import check

        report["wheel_list"] = check(REPO / ".whl")
        report["wheels"], site = install_wheels(work)
        env = child_environment(work, site)
        write_json(args.out, report)
        print(f"== correctness (budget {budgets['correctness']:.0f} s)")
        report["correctness"] = correctness(env, work, budgets["correctness"], args.cpu_smoke)
        write_json(args.out, report)
        for name in ("odice_speed", "odice_learning", "g2rl"):
            if not (cuda or args.cpu_smoke):
                report[name] = {"status": "skipped", "reason": "no CUDA device present"}
                continue
            print(f"== {name} (budget {budgets[name]:.0f} s)")
            report[name] = run_part(name, env, work, budgets[name], args.cpu_smoke)
            write_json(args.out, report)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    report["goals"] = goals(report) if cuda and not args.cpu_smoke else "evaluated on a GPU run only"
    report["wall_s"] = round(time.time() - t0, 1)
    write_json(args.out, report)
    print(json.dumps({k: report[k] for k in ("mode", "goals", "wall_s")}))
    print(f"correctness: {report['correctness']['summary']}; wrote {args.out} in {report['wall_s']} s")
    failed = report["correctness"]["status"] != "ok" or any(
        report[name].get("status") == "error" for name in ("odice_speed", "odice_learning", "g2rl"))
    return 1 if (cuda or args.cpu_smoke) and failed else 0


if __name__ == "__main__":
    sys.exit(main())
