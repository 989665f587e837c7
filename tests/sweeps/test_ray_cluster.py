"""Sweeps on a Ray cluster: storage detection, copying run directories back, node ids in meta.json, and a node
removed in the middle of a sweep (Ray's own multi-node cluster on one machine, ``ray.cluster_utils.Cluster``)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from conftest import REPO

from rlcore.logging import read_metrics
from rlcore.run import NODE_ENV
from rlcore.sweep.plan import plan
from rlcore.sweep.ray_backend import Collector, Job, train_on_node
from rlcore.sweep.spec import load_spec
from rlcore.sweep.transfer import has_marker, pack, unpack, write_marker

TINY = {"max_steps": 40, "eval_every": 20, "ckpt_every": 20, "log_every": 10, "tensorboard": False}


def _spec(tmp_path: Path, **fields) -> Path:
    spec = {"base": str(REPO / "configs/toy/demo.yaml"), "set": TINY, "seeds": [0], "metric": "eval/score", **fields}
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


def _final(run_dir: Path) -> dict:
    return json.loads((run_dir / "summary.json").read_text())["last"]["metrics"]


def test_marker_and_archives(tmp_path):
    token = write_marker(tmp_path / "out")
    assert has_marker(tmp_path / "out", token) and not has_marker(tmp_path / "out", "other")
    assert not has_marker(tmp_path / "elsewhere", token)
    src = tmp_path / "run"
    (src / "checkpoints" / "step_1").mkdir(parents=True)
    (src / "checkpoints" / "step_1" / "a.bin").write_bytes(b"\x00\x01")
    (src / "checkpoints" / ".step_2.tmp").mkdir()  # half-written: never shipped
    (src / "meta.json").write_text("{}")
    dst = tmp_path / "copy"
    dst.mkdir()
    (dst / "stale.txt").write_text("replaced")
    unpack(pack(src), dst)
    assert sorted(str(p.relative_to(dst)) for p in dst.rglob("*")) == [
        "checkpoints", "checkpoints/step_1", "checkpoints/step_1/a.bin", "meta.json"]
    assert (dst / "checkpoints" / "step_1" / "a.bin").read_bytes() == b"\x00\x01"


class _LocalCollector(Collector):
    """The collector called in this process (on a cluster it is a Ray actor on the driver's node)."""

    def __init__(self, out: str):
        super().__init__(out)
        self.received = 0

    def receive(self, rel: str, blob: bytes) -> None:
        self.received += 1
        super().receive(rel, blob)


def test_copy_mode_ships_checkpoints_back_and_resumes_from_them(tmp_path):
    """A node without the driver's storage trains in scratch, ships each checkpoint and the end to <out>; a run
    lost after its first checkpoint is restored from <out> on another node and ends as the uninterrupted one."""
    spec, base, algo = load_spec(_spec(tmp_path))
    out_a, out_b = tmp_path / "a", tmp_path / "b"
    (run_a,) = plan(spec, base, algo, out_a)
    collector = _LocalCollector(str(out_a))
    job = Job(run_a, "base/seed_0", str(out_a), write_marker(out_a), "copy", 1)
    result = train_on_node(job, "node-a", collector, ship_every_s=0.05)
    assert result["ok"], result["error"]
    assert result == {"ok": True, "error": "", "node": "node-a", "shared": False, "shipped": collector.received}
    assert collector.received >= 2  # at least one checkpoint while training, then the finished run
    done = out_a / "base" / "seed_0"
    assert json.loads((done / "meta.json").read_text())["node"] == "node-a"
    assert str(done) not in json.loads((done / "meta.json").read_text())["argv"]  # it really trained elsewhere

    # node-a "was lost" right after the step-20 checkpoint reached <out>: only that state is left there
    lost = out_b / "base" / "seed_0"
    shutil.copytree(done, lost)
    shutil.rmtree(lost / "checkpoints" / "step_000000040")
    (lost / "summary.json").unlink()
    (run_b,) = plan(spec, base, algo, out_b)
    job_b = Job(run_b, "base/seed_0", str(out_b), write_marker(out_b), "copy", 1)
    result = train_on_node(job_b, "node-b", _LocalCollector(str(out_b)), ship_every_s=0.05)
    assert result["ok"] and not result["shared"], result
    meta = json.loads((lost / "meta.json").read_text())
    assert meta["node"] == "node-a"
    assert meta["resumes"][-1]["step"] == 20 and meta["resumes"][-1]["node"] == "node-b"
    assert _final(lost) == _final(done)

    def evals(run_dir):
        return [(r["step"], r["eval/score"]) for r in read_metrics(run_dir) if "eval/score" in r]

    assert evals(lost) == evals(done) and len(evals(done)) == 2


def test_address_needs_the_ray_backend(tmp_path, capsys):
    from rlcore.cli import main

    assert main(["ablate", str(_spec(tmp_path)), "--out", str(tmp_path / "o"), "--address", "auto"]) == 2
    assert capsys.readouterr().err.strip() == "error: --address is for --backend ray (this sweep's backend is " \
                                              "sequential)"


def test_node_is_host_name_outside_ray(tmp_path, monkeypatch):
    import platform

    from rlcore.cli import main

    monkeypatch.delenv(NODE_ENV, raising=False)
    assert main(["train", "toy", "--config", str(REPO / "configs/toy/demo.yaml"), "--run-dir", str(tmp_path / "r"),
                 "--set", "max_steps=2", "--set", "progress=false", "--set", "tensorboard=false"]) == 0
    assert json.loads((tmp_path / "r" / "meta.json").read_text())["node"] == platform.node()


# ---- a real multi-node Ray cluster on this machine (slow: each node is a set of Ray processes) ----

def _cluster():
    ray_utils = pytest.importorskip("ray.cluster_utils", reason="the ray extra is not installed (pip install "
                                    "-e '.[ray]')")
    # the head runs only the driver's collector; two 1-CPU worker nodes run the trainings. Fast health checks
    # make a removed node count as dead after about 3 s.
    cluster = ray_utils.Cluster(initialize_head=True, head_node_args={
        "num_cpus": 0, "include_dashboard": False,
        "_system_config": {"health_check_initial_delay_ms": 0, "health_check_period_ms": 1000,
                           "health_check_failure_threshold": 3}})
    workers = [cluster.add_node(num_cpus=1) for _ in range(2)]
    cluster.wait_for_nodes()
    return cluster, workers


def _ablate(spec: Path, out: Path, address: str, *extra: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "rlcore", "ablate", str(spec), "--out", str(out), "--backend",
                             "ray", "--address", address, "--workers", "2", *extra], cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "RAY_AUTH_MODE": "disabled"})


@pytest.mark.slow
@pytest.mark.parametrize("storage", ["auto", "copy"])
def test_ray_cluster_sweep_survives_a_lost_node(tmp_path, storage):
    """Three runs on two worker nodes; the node of a run that has checkpointed is removed: the run is submitted
    again, resumes on the other node from its checkpoint in <out>, and every run ends as in a sequential sweep."""
    cluster, workers = _cluster()
    proc = None
    try:
        slow = {**TINY, "max_steps": 3000, "eval_every": 1000, "ckpt_every": 200, "log_every": 100}
        spec = _spec(tmp_path, set=slow, seeds=[0, 1, 2], storage=storage)
        out = tmp_path / "ray"
        proc = _ablate(spec, out, cluster.address)
        by_node = {w.node_id: w for w in workers}
        victim, deadline = None, time.time() + 240
        while victim is None and time.time() < deadline and proc.poll() is None:
            for meta in out.rglob("meta.json"):
                run_dir = meta.parent
                if (run_dir / "checkpoints" / "latest.json").is_file() and not (run_dir / "summary.json").exists():
                    victim = (run_dir, json.loads(meta.read_text())["node"])
                    break
            time.sleep(0.2)
        assert victim is not None, "no run checkpointed before the sweep ended"
        run_dir, node = victim
        assert node in by_node
        cluster.remove_node(by_node[node])
        stdout, stderr = proc.communicate(timeout=400)
        assert proc.returncode == 0, stderr[-3000:]
        assert "3/3 runs finished, 0 failed" in stdout
        assert "node lost while running" in stderr
        assert ("shared storage: runs write" if storage == "auto" else "no shared storage") in stderr
        meta = json.loads((run_dir / "meta.json").read_text())
        assert meta["node"] == node and meta["resumes"] and meta["resumes"][-1]["node"] != node
        assert meta["resumes"][-1]["step"] > 0
        nodes = {json.loads(m.read_text())["node"] for m in out.rglob("meta.json")}
        assert nodes <= set(by_node)
        report = (out / "report.md").read_text()
        assert "base" in report
    finally:
        if proc is not None and proc.poll() is None:
            proc.kill()
        cluster.shutdown()
    seq = subprocess.run([sys.executable, "-m", "rlcore", "ablate", str(spec), "--out", str(tmp_path / "seq"),
                          "--backend", "sequential", "--no-report"], cwd=REPO, capture_output=True, text=True,
                         timeout=400)
    assert seq.returncode == 0, seq.stderr
    for s in (0, 1, 2):
        assert _final(out / "base" / f"seed_{s}") == _final(tmp_path / "seq" / "base" / f"seed_{s}")
