"""Shared fixtures: paths to the third-party data in ../shared (tests using it skip when it is absent)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SHARED_DATA = Path(os.environ.get("RLCORE_SHARED_DATA", REPO.parent / "shared" / "data"))
# Tests build their models locally and never download: a hub name must fail at once, not after network retries.
os.environ.setdefault("HF_HUB_OFFLINE", "1")


@pytest.fixture(autouse=True, scope="session")
def _one_torch_thread():
    """Tests run small tensors: one intra-op thread is fastest and immune to oversubscribed machines."""
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def shared_data(*parts: str) -> Path:
    """Path under ../shared/data, or skip the test with a reason when it is not there."""
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"shared reference data not found at {path} (set RLCORE_SHARED_DATA to its location)")
    return path


def run_cli(*args: str, cwd: Path | None = None, timeout: float = 300, env: dict | None = None
            ) -> subprocess.CompletedProcess:
    """Run ``rlcore <args>`` in a subprocess with the current interpreter."""
    full_env = {**os.environ, **(env or {})}
    return subprocess.run([sys.executable, "-m", "rlcore", *args], capture_output=True, text=True,
                          cwd=cwd or REPO, timeout=timeout, env=full_env)
