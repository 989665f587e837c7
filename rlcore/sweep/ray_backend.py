"""The Ray backend: each run is a Ray task that supervises its training as a subprocess on a worker."""

from __future__ import annotations

import os
import signal
import threading
from concurrent.futures import Future
from typing import Any

from rlcore.errors import UserError
from rlcore.sweep.local import run_subprocess
from rlcore.sweep.plan import RunSpec


class RayRunner:
    """Submits runs as Ray tasks (:func:`run_subprocess` on a worker); :meth:`cancel` ends the unfinished ones."""

    def __init__(self, threads: int):
        try:
            import ray
        except ImportError as e:
            raise UserError("backend ray needs the ray package: pip install 'ray[default]', or use "
                            "--backend process") from e
        if not ray.is_initialized():
            on_sigterm = signal.getsignal(signal.SIGTERM)
            # RAY_ADDRESS points at a cluster; without it a local instance is started
            ray.init(address=os.environ.get("RAY_ADDRESS"), include_dashboard=False, log_to_driver=False)
            if threading.current_thread() is threading.main_thread():
                # ray.init replaces the SIGTERM handler (at the C level too, where it aborts the driver); put ours
                # back, so that a stopped sweep cancels its tasks and their trainings like the process backend
                signal.signal(signal.SIGTERM, on_sigterm)
        self._ray, self._threads = ray, threads
        self._remote = ray.remote(num_cpus=threads)(run_subprocess)
        self._refs: list[Any] = []

    def __call__(self, run: RunSpec) -> Future:
        ref = self._remote.remote(run, self._threads)
        self._refs.append(ref)
        return ref.future()

    def cancel(self, grace_s: float = 15.0) -> None:
        """Cancel every unfinished task (a running one gets KeyboardInterrupt and ends its training), then wait up
        to ``grace_s`` for them, so that no training outlives the sweep."""
        if not self._refs:
            return
        _, unfinished = self._ray.wait(self._refs, num_returns=len(self._refs), timeout=0)
        for ref in unfinished:
            self._ray.cancel(ref)
        if unfinished:
            self._ray.wait(unfinished, num_returns=len(unfinished), timeout=grace_s)
