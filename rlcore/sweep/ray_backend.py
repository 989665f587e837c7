"""The Ray backend: each run is a Ray task that supervises its training as a subprocess on some node of a cluster.

Cluster: ``--address`` (or the spec's ``address``, else ``RAY_ADDRESS``) names a running cluster (``auto`` or
``host:6379``); without one a local instance is started. The sweep driver must run on a node of that cluster
(``ray://`` client addresses are refused), because what it writes lands on its own disk.

Storage, detected per node (spec key ``storage``: ``auto``, or ``shared``/``copy`` to force it): the driver writes
a random token to ``<out>/.rlcore-sweep-token``; a node that reads the same token there shares storage and trains
straight into ``<out>``. Any other node trains in a scratch folder (``$TMPDIR/rlcore-sweeps/<token>/...``) and
ships the whole run directory back to the driver's node, where an actor (:class:`Collector`) unpacks it into
``<out>``: each time the training writes a checkpoint and when the run ends. So ``<out>`` always holds every run's
last checkpoint.

Node loss: a task that fails because its node or worker died is submitted again (at most ``max_resubmits`` times);
its new node starts from the checkpoint in ``<out>`` (shared storage: directly; otherwise the collector sends the
copy it holds), with ``--resume``. A training dies with the task that supervises it (see
:mod:`rlcore.sweep.local`), so a lost node's training never writes on behind its successor.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import shutil
import signal
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from rlcore.checkpoint import CheckpointManager
from rlcore.errors import UserError
from rlcore.run import CHECKPOINT_DIR, NODE_ENV
from rlcore.sweep.local import Supervisor
from rlcore.sweep.plan import RunSpec
from rlcore.sweep.spec import SweepSpec
from rlcore.sweep.transfer import MARKER_FILE, has_marker, pack, unpack, write_marker

_LOST = ("NodeDiedError", "WorkerCrashedError", "LocalRayletDiedError", "ObjectLostError", "OwnerDiedError")
"""Ray errors that mean the node or worker running a task went away (the run itself did not fail)."""


@dataclasses.dataclass
class Job:
    """What a Ray task needs to train one run of the sweep."""

    run: RunSpec
    rel: str
    """The run directory relative to the sweep's output folder."""
    out: str
    """The sweep's output folder on the driver's node (absolute)."""
    token: str
    """The driver's storage marker token."""
    storage: str
    """auto (detect shared storage), shared or copy."""
    threads: int


class Collector:
    """Lives on the driver's node: unpacks shipped run directories into ``out`` and sends back the copy it holds."""

    def __init__(self, out: str):
        self.out = Path(out)

    def receive(self, rel: str, blob: bytes) -> None:
        unpack(blob, self.out / rel)

    def snapshot(self, rel: str) -> bytes | None:
        """The run directory as last shipped (None when it holds no checkpoint: the run starts afresh)."""
        run_dir = self.out / rel
        if CheckpointManager(run_dir / CHECKPOINT_DIR).latest_step() is None:
            return None
        return pack(run_dir)


@contextlib.contextmanager
def _env(name: str, value: str) -> Iterator[None]:
    previous = os.environ.get(name)
    os.environ[name] = value
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = previous


def _moved(run: RunSpec, run_dir: Path) -> RunSpec:
    """``run`` writing to ``run_dir`` instead."""
    argv = list(run.argv)
    argv[argv.index("--run-dir") + 1] = str(run_dir)
    return dataclasses.replace(run, run_dir=run_dir, argv=argv)


class _Shipper(threading.Thread):
    """Ships ``run_dir`` each time its ``checkpoints/latest.json`` changes (polled every ``every_s``)."""

    def __init__(self, run_dir: Path, ship: Callable[[bytes], None], every_s: float):
        super().__init__(daemon=True)
        self.run_dir, self.ship, self.every_s = run_dir, ship, every_s
        self.latest = self._latest()
        self.shipped = 0
        self.done = threading.Event()

    def _latest(self) -> str | None:
        try:
            return (self.run_dir / CHECKPOINT_DIR / "latest.json").read_text(encoding="utf-8")
        except OSError:
            return None

    def run(self) -> None:
        while not self.done.wait(self.every_s):
            latest = self._latest()
            if latest is not None and latest != self.latest:
                self.latest = latest
                self.ship(pack(self.run_dir))
                self.shipped += 1

    def finish(self) -> None:
        """Stop polling and ship the directory as the training left it."""
        self.done.set()
        self.join()
        if self.run_dir.is_dir():
            self.ship(pack(self.run_dir))
            self.shipped += 1


def train_on_node(job: Job, node: str, collector: Any, ship_every_s: float = 1.0) -> dict[str, Any]:
    """Train ``job`` on this node (its meta.json records ``node``); returns ``{ok, error, node, shared}``.

    ``collector`` has :class:`Collector`'s methods (called synchronously); it is only used when this node does not
    share the driver's storage.
    """
    out = Path(job.out)
    shared = job.storage == "shared" or (job.storage == "auto" and has_marker(out, job.token))
    supervisor = Supervisor()
    with _env(NODE_ENV, node):
        if shared:
            ok, error = supervisor.run(_moved(job.run, out / job.rel), job.threads)
            return {"ok": ok, "error": error, "node": node, "shared": True}
        run_dir = Path(tempfile.gettempdir()) / "rlcore-sweeps" / job.token / job.rel
        shutil.rmtree(run_dir, ignore_errors=True)
        snapshot = collector.snapshot(job.rel)
        if snapshot is not None:
            unpack(snapshot, run_dir)
        shipper = _Shipper(run_dir, lambda blob: collector.receive(job.rel, blob), ship_every_s)
        shipper.start()
        try:
            ok, error = supervisor.run(_moved(job.run, run_dir), job.threads)
        finally:
            shipper.finish()  # also when the task is cancelled: the stopped run's checkpoint reaches <out>
        shutil.rmtree(run_dir, ignore_errors=True)
        return {"ok": ok, "error": error, "node": node, "shared": False, "shipped": shipper.shipped}


class _Blocking:
    """A Ray actor handle whose method calls wait for their result."""

    def __init__(self, actor: Any):
        self._actor = actor

    def __getattr__(self, name: str) -> Callable[..., Any]:
        import ray

        method = getattr(self._actor, name)
        return lambda *args: ray.get(method.remote(*args))


def _task(job: Job, collector: Any) -> dict[str, Any]:
    import ray

    return train_on_node(job, ray.get_runtime_context().get_node_id(), _Blocking(collector))


class RayRunner:
    """Submits runs as Ray tasks (``__call__`` returns a Future of ``(ok, error)``), resubmits those whose node
    was lost, and reports each node's storage mode once; :meth:`cancel` ends the unfinished ones."""

    def __init__(self, spec: SweepSpec, out: Path, max_resubmits: int = 3):
        try:
            import ray
            from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy
        except ImportError as e:
            raise UserError("backend ray needs the ray package: pip install 'ray[default]', or use "
                            "--backend process") from e
        address = spec.address or os.environ.get("RAY_ADDRESS") or None
        if address and address.startswith("ray://"):
            raise UserError(f"Ray client addresses ({address}) are not supported: run `rlcore ablate` on a node of "
                            "the cluster with --address auto (or host:6379), e.g. through `ray job submit`")
        if not ray.is_initialized():
            on_sigterm = signal.getsignal(signal.SIGTERM)
            try:  # with no address a local instance is started
                ray.init(address=address, include_dashboard=False, log_to_driver=False)
            except ConnectionError as e:
                raise UserError(f"cannot reach the Ray cluster at {address}: {e}") from e
            if threading.current_thread() is threading.main_thread():
                # ray.init replaces the SIGTERM handler (at the C level too, where it aborts the driver); put ours
                # back, so that a stopped sweep cancels its tasks and their trainings like the process backend
                signal.signal(signal.SIGTERM, on_sigterm)
        self._ray, self._spec, self._max_resubmits = ray, spec, max_resubmits
        self.out = out.resolve()
        self._token = write_marker(self.out)
        here = ray.get_runtime_context().get_node_id()
        self._collector = ray.remote(num_cpus=0)(Collector).options(
            scheduling_strategy=NodeAffinitySchedulingStrategy(here, soft=False)).remote(str(self.out))
        self._remote = ray.remote(num_cpus=spec.threads_per_worker, max_retries=0)(_task)
        self._refs: list[Any] = []
        self._nodes: set[str] = set()
        self._lock = threading.Lock()
        self._cancelled = False
        alive = [n for n in ray.nodes() if n.get("Alive")]
        cpus = sum(n.get("Resources", {}).get("CPU", 0) for n in alive)
        storage = (f"shared storage detected per node from {self.out / MARKER_FILE}" if spec.storage == "auto"
                   else f"storage: {spec.storage} (from the spec)")
        self._say(f"ray: {len(alive)} node(s), {cpus:g} CPUs ({address or 'local instance'}); {storage}")

    @staticmethod
    def _say(text: str) -> None:
        tqdm.write(text, file=sys.stderr)

    def __call__(self, run: RunSpec) -> Future:
        result: Future = Future()
        job = Job(run, str(run.run_dir.resolve().relative_to(self.out)), str(self.out), self._token,
                  self._spec.storage, self._spec.threads_per_worker)
        self._submit(job, result, attempt=0)
        return result

    def _submit(self, job: Job, result: Future, attempt: int) -> None:
        ref = self._remote.remote(job, self._collector)
        with self._lock:
            self._refs.append(ref)
        ref.future().add_done_callback(lambda done: self._ended(job, result, attempt, done))

    def _ended(self, job: Job, result: Future, attempt: int, done: Future) -> None:
        try:
            outcome = done.result()
        except Exception as e:
            lost = type(e).__name__ in _LOST
            if lost and attempt < self._max_resubmits and not self._cancelled:
                self._say(f"node lost while running {job.rel} ({type(e).__name__}); submitted again "
                          f"(try {attempt + 2} of {self._max_resubmits + 1}), it resumes from its last checkpoint")
                self._submit(job, result, attempt + 1)
            else:
                result.set_exception(e)
            return
        with self._lock:
            new = outcome["node"] not in self._nodes
            self._nodes.add(outcome["node"])
        if new:
            how = ("shared storage: runs write to the output folder directly" if outcome["shared"] else
                   "no shared storage: run directories are copied back to the output folder at each checkpoint "
                   "and when a run ends")
            self._say(f"node {outcome['node'][:12]}: {how}")
        result.set_result((outcome["ok"], outcome["error"]))

    def cancel(self, grace_s: float = 15.0) -> None:
        """Cancel every unfinished task (a running one gets KeyboardInterrupt and ends its training), wait up to
        ``grace_s`` for them, so that no training outlives the sweep, then remove the collector and the marker."""
        self._cancelled = True
        with self._lock:
            refs = list(self._refs)
        if refs:
            _, unfinished = self._ray.wait(refs, num_returns=len(refs), timeout=0)
            for ref in unfinished:
                self._ray.cancel(ref)
            if unfinished:
                self._ray.wait(unfinished, num_returns=len(unfinished), timeout=grace_s)
        self._ray.kill(self._collector)
        (self.out / MARKER_FILE).unlink(missing_ok=True)
