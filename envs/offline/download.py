"""Datasets by name: D4RL files from D4RL's URLs into D4RL's cache, Minari datasets through Minari's own download.

- A D4RL name (``hopper-medium-v2``) downloads ``<base><D4RL's relative path>`` (``gym_mujoco_v2/
  hopper_medium-v2.hdf5``), ``<base>`` being D4RL's ``http://rail.eecs.berkeley.edu/datasets/offline_rl/`` or the
  environment variable ``RLCORE_D4RL_URL`` (a mirror, an air-gapped copy). The file goes to ``$D4RL_DATASET_DIR``,
  else ``~/.d4rl/datasets``, under D4RL's own file name, so a file d4rl already cached is used as it is. The
  transfer resumes, retries, checks the size and validates the HDF5 before the file appears under its name
  (:mod:`rlcore.envs.offline.transfer`).
- A Minari id (``minari:<id>``, or a registered port such as ``mujoco/hopper/medium-v0``) goes through
  ``minari.download_dataset`` into ``$MINARI_DATASETS_PATH``, else ``~/.minari/datasets``.
- ``RLCORE_OFFLINE=1`` or ``HF_HUB_OFFLINE=1`` (``--offline`` on the command line) never touches the network: a
  missing dataset is an error that says where to put it.

Example::

    >>> d4rl_url("door-human-v1").endswith("/hand_dapg_v1/door-human-v1.hdf5")
    True
"""

from __future__ import annotations

import difflib
import os
import sys
from pathlib import Path
from typing import Any

from rlcore.envs.offline.readers import DEFAULT_DATASET
from rlcore.envs.offline.registry import (
    D4RL_BASE_URL,
    MINARI_PORTS,
    Task,
    d4rl_file_name,
    d4rl_relative_paths,
    get_task,
)
from rlcore.envs.offline.transfer import download_file, exclusive
from rlcore.errors import DataError, UserError
from rlcore.runtime import offline_reason

# ---------------------------------------------------------------------------------------------------------------
# D4RL


def d4rl_dir() -> Path:
    """Where D4RL files live: ``$D4RL_DATASET_DIR``, else ``~/.d4rl/datasets`` (d4rl's own cache)."""
    return Path(os.environ.get("D4RL_DATASET_DIR") or Path.home() / ".d4rl" / "datasets").expanduser()


def d4rl_url(name: str) -> str:
    """Download URL of D4RL dataset ``name``: ``$RLCORE_D4RL_URL`` (else D4RL's base URL) + D4RL's relative path."""
    relative = d4rl_relative_paths().get(name)
    if relative is None:
        raise UserError(f"'{name}' is not a D4RL dataset, so there is nothing to download; pass its file with "
                        "--dataset (see `rlcore data list` for the names that download)")
    return (os.environ.get("RLCORE_D4RL_URL") or D4RL_BASE_URL).rstrip("/") + "/" + relative


def d4rl_path(name: str, directory: str | os.PathLike | None = None) -> Path:
    """Local path of D4RL dataset ``name`` in ``directory`` (default :func:`d4rl_dir`), under D4RL's file name."""
    file_name = d4rl_file_name(name)
    if file_name is None:
        d4rl_url(name)  # raises the error that explains it
    return Path(directory or d4rl_dir()).expanduser() / file_name


def fetch_d4rl(name: str, directory: str | os.PathLike | None = None, *, progress: bool = True,
               **transfer: Any) -> Path:
    """Path of D4RL dataset ``name``'s file, downloaded first when missing (``transfer``: options of
    :func:`~rlcore.envs.offline.transfer.download_file` such as ``attempts``, ``backoff_s``, ``timeout_s``)."""
    dest = d4rl_path(name, directory)
    if dest.is_file():
        return dest
    url = d4rl_url(name)
    reason = offline_reason()
    if reason is not None:
        raise DataError(f"'{name}' is not downloaded ({dest} is missing) and downloads are off ({reason}); fetch "
                        f"{url} elsewhere and place it at {dest}, or allow downloads")
    task = get_task(name)
    advice = (f"check the network or the mirror (RLCORE_D4RL_URL), or download the file by hand and place it at "
              f"{dest}")
    return download_file(url, dest, validate=lambda path: _check_d4rl_file(path, task), advice=advice,
                         progress=progress, **transfer)


def _check_d4rl_file(path: Path, task: Task) -> None:
    """The existing reader's validation (keys, shapes, dtypes, finiteness) plus the task's observation/action sizes."""
    from rlcore.envs.offline.hdf5 import read_hdf5
    from rlcore.envs.offline.validation import check_sizes

    arrays, _ = read_hdf5(path, need_timeouts=False)
    check_sizes(arrays["observations"].shape[1], arrays["actions"].shape[1], str(path), task.name, task.env_id,
                task.obs_dim, task.act_dim)


# ---------------------------------------------------------------------------------------------------------------
# Minari


def minari_dir() -> Path:
    """Where Minari datasets live: ``$MINARI_DATASETS_PATH``, else ``~/.minari/datasets``."""
    return Path(os.environ.get("MINARI_DATASETS_PATH") or Path.home() / ".minari" / "datasets").expanduser()


def minari_is_local(dataset_id: str) -> bool:
    return (minari_dir() / dataset_id / "data").is_dir()


def fetch_minari(dataset_id: str) -> Path:
    """Folder of Minari dataset ``dataset_id``, downloaded first with ``minari.download_dataset`` when missing."""
    where = minari_dir() / dataset_id
    if minari_is_local(dataset_id):
        return where
    reason = offline_reason()
    if reason is not None:
        raise DataError(f"Minari dataset '{dataset_id}' is not local ({where} is missing) and downloads are off "
                        f"({reason}); run `minari download {dataset_id}` elsewhere and copy the folder to {where}")
    try:
        import minari
    except ImportError as e:
        raise UserError("Minari datasets need the minari package; pip install 'rlcore[minari]'") from e
    minari_dir().mkdir(parents=True, exist_ok=True)
    with exclusive(minari_dir() / f".{dataset_id.replace('/', '__')}.lock",  # hidden: minari lists folders only
                   f"another process is downloading {dataset_id}"):
        if minari_is_local(dataset_id):
            return where
        print(f"downloading Minari dataset {dataset_id} -> {where} (minari.download_dataset)", file=sys.stderr,
              flush=True)
        try:
            minari.download_dataset(dataset_id)
        except Exception as e:  # minari raises ValueError, hub and HTTP client errors: all end the same way here
            text = str(e).strip().splitlines()[0] if str(e).strip() else "no details"
            raise DataError(f"could not download Minari dataset '{dataset_id}' ({type(e).__name__}: {text}); check "
                            f"the network and the id (`minari list remote`), or copy the dataset folder to "
                            f"{where}") from e
    if not minari_is_local(dataset_id):
        raise DataError(f"minari.download_dataset('{dataset_id}') returned but {where / 'data'} does not exist; "
                        "check MINARI_DATASETS_PATH")
    return where


# ---------------------------------------------------------------------------------------------------------------
# by name


def fetch_dataset(name: str, directory: str | os.PathLike | None = None, *, progress: bool = True) -> Path:
    """Make dataset ``name`` local and return where it is: a D4RL name (its HDF5 file, in ``directory`` or
    :func:`d4rl_dir`) or a Minari id (``minari:<id>`` or a registered port; its folder under :func:`minari_dir`)."""
    if name in d4rl_relative_paths():
        return fetch_d4rl(name, directory, progress=progress)
    dataset_id = name.removeprefix("minari:")
    if name.startswith("minari:") or dataset_id in MINARI_PORTS:
        return fetch_minari(dataset_id)
    close = difflib.get_close_matches(name, [*d4rl_relative_paths(), *MINARI_PORTS], n=3, cutoff=0.6)
    hint = f"did you mean {', '.join(close)}?" if close else "`rlcore data list` shows the names"
    raise UserError(f"'{name}' is neither a D4RL name nor a Minari id (minari:<id>); {hint}")


def dataset_table(local_only: bool = False) -> list[dict[str, Any]]:
    """One row per name that can be fetched: ``name``, ``source``, ``status`` (local / partial / missing / built
    in), ``size`` in bytes (None when unknown: nothing local) and ``path``. Never touches the network."""
    rows = [{"name": DEFAULT_DATASET, "source": "embedded (generated on use)", "status": "built in",
             "size": None, "path": ""}]
    for name, relative in d4rl_relative_paths().items():
        path = d4rl_path(name)
        part = path.with_name(path.name + ".part")
        status, size = ("local", _file_size(path)) if path.is_file() else (
            ("partial", _file_size(part)) if part.is_file() else ("missing", None))
        rows.append({"name": name, "source": f"d4rl {relative}", "status": status, "size": size, "path": str(path)})
    for dataset_id, counterpart in MINARI_PORTS.items():
        where = minari_dir() / dataset_id
        local = minari_is_local(dataset_id)
        rows.append({"name": dataset_id, "source": "minari" + (f" (port of {counterpart})" if counterpart else ""),
                     "status": "local" if local else "missing",
                     "size": sum(_file_size(p) for p in where.rglob("*") if p.is_file()) if local else None,
                     "path": str(where)})
    return [r for r in rows if r["status"] in ("local", "built in")] if local_only else rows


def _file_size(path: Path) -> int:
    return path.stat().st_size
