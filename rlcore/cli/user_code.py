"""Which frames of a traceback are the user's own code (a reward function, a plugin), not rlcore's or a library's."""

from __future__ import annotations

import importlib.util
import sysconfig
import traceback
from pathlib import Path

import rlcore


def _library_roots() -> tuple[str, ...]:
    """Folders whose files are not user code: rlcore's own (all three mapped folders), the standard library and
    installed packages."""
    roots = {str(Path(p).resolve()) for p in rlcore.__path__}
    for name in ("rlcore.algorithms", "rlcore.envs"):  # their folders, found without importing them
        spec = importlib.util.find_spec(name)
        roots.update(str(Path(p).resolve()) for p in (spec.submodule_search_locations or []) if spec)
    for key in ("stdlib", "platstdlib", "purelib", "platlib"):
        roots.add(str(Path(sysconfig.get_paths()[key]).resolve()))
    return tuple(roots)


def user_frames(error: BaseException) -> list[str]:
    """``File "...", line N, in f`` lines of user code in ``error``'s traceback and in the errors it was raised from
    (innermost chain last); empty when the error came from rlcore or a library alone."""
    roots = _library_roots()
    chain: list[BaseException] = []
    seen: BaseException | None = error
    while seen is not None and seen not in chain:
        chain.append(seen)
        seen = seen.__cause__ or seen.__context__
    lines: list[str] = []
    for e in reversed(chain):
        for frame in traceback.extract_tb(e.__traceback__):
            path = str(Path(frame.filename).resolve())
            if frame.filename.startswith("<") or path.startswith(roots):
                continue
            lines.append(f'  File "{frame.filename}", line {frame.lineno}, in {frame.name}\n')
            if frame.line:
                lines.append(f"    {frame.line}\n")
    return lines
