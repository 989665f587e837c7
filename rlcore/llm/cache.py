"""A small on-disk cache for artefacts built at run time (tokenizer files, tiny models), never committed.

The root is ``$RLCORE_CACHE`` if set, else ``~/.cache/rlcore``. An entry is a directory built in a temporary
sibling and renamed into place once complete, so a crash or a concurrent builder never leaves half an entry.
Its files and folders get the modes the umask gives new ones (a builder may write files as 0600 through
temporary files, and the temporary folder is 0700).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

COMPLETE = ".complete"


def cache_root(cache_dir: str | Path | None = None) -> Path:
    """``cache_dir`` if given, else ``$RLCORE_CACHE``, else ``~/.cache/rlcore``."""
    if cache_dir is not None:
        return Path(cache_dir).expanduser()
    env = os.environ.get("RLCORE_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "rlcore"


def _follow_umask(directory: Path) -> None:
    """chmod ``directory``, its folders to 0777 and its files to 0666, less the umask (read from a probe file)."""
    probe = directory / ".umask-probe"
    os.close(os.open(probe, os.O_CREAT | os.O_WRONLY, 0o666))
    file_mode = probe.stat().st_mode & 0o666
    probe.unlink()
    dir_mode = file_mode | ((file_mode & 0o444) >> 2)  # x wherever r
    for folder, _, files in os.walk(directory):
        os.chmod(folder, dir_mode)
        for name in files:
            os.chmod(os.path.join(folder, name), file_mode)


def cached_directory(path: str | Path, build: Callable[[Path], None]) -> Path:
    """Return ``path``, first calling ``build(tmp_dir)`` and moving the result there if it is not complete yet."""
    path = Path(path)
    if (path / COMPLETE).is_file():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    try:
        build(tmp)
        (tmp / COMPLETE).write_text("ok\n", encoding="utf-8")
        _follow_umask(tmp)
        if path.exists() and not (path / COMPLETE).is_file():
            shutil.rmtree(path)  # a stale, incomplete entry from an older layout
        try:
            os.rename(tmp, path)
        except OSError:
            if not (path / COMPLETE).is_file():  # lost a race to another builder: theirs is as good as ours
                raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return path
