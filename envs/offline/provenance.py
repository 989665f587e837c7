"""Where an offline dataset came from, as a small JSON-able dict (a run writes it to ``data.json``).

``source`` is one of:

- ``"d4rl"``: one of D4RL's own files (recognised by its D4RL file name, e.g. ``hopper_medium-v2.hdf5``, and not
  made by rlcore), or data read through the ``d4rl`` package. Only these runs may be set beside published D4RL
  numbers.
- ``"minari"``: a Minari dataset, with its id and version. Minari's ports of D4RL (``mujoco/*`` regenerated on
  gymnasium ``-v5`` with other agents, ``D4RL/*`` re-created in gymnasium-robotics) are not D4RL's data:
  ``d4rl_compatible`` is false and ``d4rl_counterpart`` names the D4RL dataset they stand in for.
- ``"generated"``: made by rlcore (``rlcore data collect`` / ``mix``, or the embedded default), with the behaviour
  policy and seed recorded in the file.
- ``"user"``: anything else (a user's arrays, ``OfflineDataset`` or file), with its sizes.

Files also get their size in bytes and SHA-256. Hashing a 1 GB file takes seconds, so the digest is cached in a
sidecar ``<file>.sha256`` (JSON: size, mtime, digest) and reused while the file's size and mtime are unchanged.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path
from typing import Any

from rlcore.envs.offline.dataset import OfflineDataset
from rlcore.envs.offline.registry import MINARI_PORTS, d4rl_relative_paths
from rlcore.io import atomic_write_text
from rlcore.logging import announce

SOURCES = ("d4rl", "minari", "generated", "user")
"""Every value of ``provenance(...)["source"]``."""
_GENERATED_KEYS = ("policy", "seed", "noise", "stochastic", "env_id", "created", "created_by", "mixture_of",
                   "mixture_sources")


def provenance(dataset: OfflineDataset, d4rl_name: str | None = None) -> dict[str, Any]:
    """Where ``dataset`` (as :func:`rlcore.envs.offline.load_dataset` returned it) came from.

    ``d4rl_name`` (the run's task) picks the name when several D4RL datasets share a file name.
    """
    meta = dataset.metadata
    fmt = meta.get("format")
    shape = {"transitions": len(dataset), "episodes": dataset.num_episodes, "obs_dim": dataset.obs_dim,
             "act_dim": dataset.act_dim}
    if fmt == "d4rl-hdf5":
        path = Path(meta["source"])
        out = {"path": str(path.resolve()), **file_digest(path)}
        if str(meta.get("created_by", "")).startswith("rlcore") or "mixture_of" in meta:
            return {"source": "generated", **out, **_generated(meta), **shape}
        name = d4rl_names_by_file().get(path.name)
        if name is not None:
            return {"source": "d4rl", "d4rl_name": d4rl_name if d4rl_name in name else name[0], **out, **shape}
        return {"source": "user", **out, **shape}
    if fmt == "d4rl":
        return {"source": "d4rl", "d4rl_name": meta["source"].removeprefix("d4rl:"), "via": "d4rl package",
                **shape}
    if fmt == "minari":
        dataset_id = meta.get("minari_id") or meta["source"].removeprefix("minari:")
        match = re.search(r"-v(\d+)$", dataset_id)
        return {"source": "minari", "id": dataset_id, "version": int(match.group(1)) if match else None,
                "minari_version": meta.get("minari_version"), "d4rl_compatible": False,
                "d4rl_counterpart": MINARI_PORTS.get(dataset_id), **shape}
    if fmt == "embedded":
        return {"source": "generated", "name": meta["source"], **_generated(meta), **shape}
    return {"source": "user", "form": fmt or "dataset", **shape}


def _generated(meta: dict[str, Any]) -> dict[str, Any]:
    return {k: meta[k] for k in _GENERATED_KEYS if k in meta}


def d4rl_names_by_file() -> dict[str, list[str]]:
    """D4RL file name (``hopper_medium-v2.hdf5``) -> the D4RL dataset names downloaded under it."""
    out: dict[str, list[str]] = {}
    for name, relative in sorted(d4rl_relative_paths().items()):
        out.setdefault(relative.rsplit("/", 1)[-1], []).append(name)
    return out


def file_digest(path: str | os.PathLike, chunk: int = 1 << 20) -> dict[str, Any]:
    """``{"size_bytes", "sha256"}`` of a file, from its sidecar cache when size and mtime still match."""
    path = Path(path)
    stat = path.stat()
    key = {"size_bytes": stat.st_size, "mtime_ns": stat.st_mtime_ns}
    sidecar = path.with_name(path.name + ".sha256")
    try:
        cached = json.loads(sidecar.read_text(encoding="utf-8"))
        if {k: cached.get(k) for k in key} == key and isinstance(cached.get("sha256"), str):
            return {"size_bytes": stat.st_size, "sha256": cached["sha256"]}
    except (OSError, ValueError):
        pass
    if stat.st_size > 100 << 20:  # about a second per 500 MB: say why the run pauses
        announce(f"computing the SHA-256 of {path} ({stat.st_size / 2**30:.2f} GiB, once: kept in {sidecar.name})")
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            digest.update(block)
    sha = digest.hexdigest()
    try:
        atomic_write_text(sidecar, json.dumps({**key, "sha256": sha}) + "\n")
    except OSError:  # a read-only folder: hash again next time
        pass
    return {"size_bytes": stat.st_size, "sha256": sha}
