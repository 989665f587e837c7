"""Download one file over HTTP(S) so that the destination is either absent or complete and checked.

:func:`download_file` never leaves a partial or unchecked file under the final name:

- bytes go to ``<dest>.part`` in the destination folder; after a dropped connection, and in a later process after
  a kill, the transfer resumes with an HTTP ``Range`` request, and starts again from zero when the server answers
  it with 200 (no Range support);
- failures that may pass (connection errors, timeouts, HTTP 408/425/429/5xx) are retried with exponential backoff;
  an attempt that brought new bytes does not count as a failure;
- the final size must equal the size the server announced (Content-Length, or the total of Content-Range), then
  ``validate`` checks the content; the file is flushed to disk and renamed. A failed check deletes the part file
  and says why;
- ``<dest>.lock`` (``fcntl.flock``, removed when done) serialises processes asking for the same file: the second
  waits, then finds ``dest`` and uses it.

Every failure is a :class:`~rlcore.errors.DataError` of one line naming the URL and what went wrong.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import re
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

from rlcore import __version__
from rlcore.errors import DataError

try:
    import fcntl
except ImportError:  # not POSIX: concurrent downloads of one file are not serialised
    fcntl = None  # type: ignore[assignment]

CHUNK_BYTES = 1 << 16
RETRY_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})
"""HTTP statuses worth another attempt; any other error status fails at once."""


class _Retry(Exception):
    """A failure worth another attempt; the message says what happened."""


def download_file(url: str, dest: str | os.PathLike, *, validate: Callable[[Path], None] | None = None,
                  advice: str = "", progress: bool = True, attempts: int = 4, backoff_s: float = 1.0,
                  timeout_s: float = 60.0) -> Path:
    """Download ``url`` to ``dest`` (see the module docstring) and return ``dest``; an existing ``dest`` is kept.

    Prints one line saying where the file goes (and its size), then (``progress``) a bar with speed and ETA.
    ``validate(path)`` raises DataError when the downloaded bytes are unusable. ``advice`` ends every error
    message (default: place the file by hand at ``dest``). ``attempts``: failures in a row before giving up;
    ``backoff_s``: wait before the first retry, doubled each time; ``timeout_s``: per connect or read.
    """
    dest = Path(dest)
    if dest.is_file():
        return dest
    advice = advice or f"download it by hand and place it at {dest}"
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    with exclusive(dest.with_name(dest.name + ".lock"), f"another process is downloading {dest.name}"):
        if dest.is_file():  # the process we waited for finished it
            return dest
        total = _transfer(url, dest, progress, attempts, backoff_s, timeout_s, advice)
        size = _size(part)
        try:
            if total is not None and size != total:
                raise DataError(f"{size} bytes arrived but the server announced {total}")
            if validate is not None:
                validate(part)
        except DataError as e:
            part.unlink(missing_ok=True)
            raise DataError(f"the file from {url} failed its check and was deleted: {e}; {advice}") from e
        _commit(part, dest)
    return dest


@contextlib.contextmanager
def exclusive(lock_path: Path, waiting: str) -> Iterator[None]:
    """Hold an exclusive ``flock`` on ``lock_path``; print ``waiting`` once when another process holds it.

    The holder deletes the lock file before releasing it, so no lock files stay behind; a process that locked a
    file which was deleted meanwhile sees that it no longer is ``lock_path`` and locks the new one."""
    if fcntl is None:
        yield
        return
    said = False
    while True:
        f = open(lock_path, "a")
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if not said:
                print(f"waiting: {waiting} (lock {lock_path})", file=sys.stderr, flush=True)
                said = True
            fcntl.flock(f, fcntl.LOCK_EX)
        try:
            if os.path.samestat(os.fstat(f.fileno()), os.stat(lock_path)):
                break
        except FileNotFoundError:
            pass
        f.close()
    try:
        yield
    finally:
        lock_path.unlink(missing_ok=True)  # while still holding it: see the docstring
        f.close()


def _transfer(url: str, dest: Path, progress: bool, attempts: int, backoff_s: float, timeout_s: float,
              advice: str) -> int | None:
    """Fill ``<dest>.part`` with the body of ``url``, resuming across failures; the announced size (None: unknown).

    The line saying where the file goes is printed once the server has answered, so an error stays one line."""
    from tqdm.auto import tqdm

    part = dest.with_name(dest.name + ".part")
    failures, announced = 0, False

    def announce(total: int | None, have: int) -> None:
        nonlocal announced
        if not announced:
            size = f"{total / 2**20:.1f} MiB" if total is not None else "size unknown"
            resume = f", resuming after {have / 2**20:.1f} MiB" if have else ""
            print(f"downloading {url} ({size}{resume}) -> {dest}", file=sys.stderr, flush=True)
            announced = True

    with tqdm(unit="B", unit_scale=True, unit_divisor=1024, desc=part.name.removesuffix(".part"),
              disable=not progress, dynamic_ncols=True, file=sys.stderr, delay=0.5) as bar:  # no bar under 0.5 s
        while True:
            before = _size(part)
            try:
                total = _attempt(url, part, timeout_s, bar, announce)
                if total is None or _size(part) >= total:
                    return total
                reason = f"the connection closed after {_size(part)} of {total} bytes"
            except urllib.error.HTTPError as e:
                if e.code not in RETRY_STATUS:
                    raise DataError(f"could not download {url}: HTTP {e.code} {e.reason}; {advice}") from None
                reason = f"HTTP {e.code} {e.reason}"
            except _Retry as e:
                reason = str(e)
            except (OSError, http.client.HTTPException) as e:  # URLError (DNS, refused), reset, timeout, short read
                reason = _describe(e)
            failures = 0 if _size(part) > before else failures + 1
            if failures >= attempts:
                have = _size(part)
                kept = f"; kept {have} bytes in {part} (run again to resume)" if have else ""
                raise DataError(f"could not download {url}: {reason} ({attempts} attempts without progress){kept}; "
                                f"{advice}")
            if failures:
                time.sleep(backoff_s * 2 ** (failures - 1))


def _attempt(url: str, part: Path, timeout_s: float, bar, announce: Callable[[int | None, int], None]  # noqa: ANN001
             ) -> int | None:
    """One request: append to ``part`` (Range) or rewrite it (200); the announced total size."""
    have = _size(part)
    headers = {"User-Agent": f"rlcore/{__version__}", "Accept-Encoding": "identity"}
    if have:
        headers["Range"] = f"bytes={have}-"
    try:
        response = urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=timeout_s)
    except urllib.error.HTTPError as e:
        if e.code != 416 or not have:
            raise
        total = _range_total(e.headers.get("Content-Range", ""))
        e.close()
        if total == have:  # the earlier process got every byte and died before the rename
            return total
        part.unlink()
        raise _Retry(f"HTTP 416: the {have} bytes kept do not fit the server's file; starting again") from None
    with response:
        if response.status == 206:
            start, total = _content_range(response.headers.get("Content-Range", ""))
            if start != have:
                part.unlink()
                raise _Retry(f"the server answered bytes from {start} instead of {have}; starting again")
        else:  # 200: the whole body, also when Range was asked for and ignored
            have = 0
            length = response.headers.get("Content-Length", "")
            total = int(length) if length.isdigit() else None
        announce(total, have)
        bar.total = total
        bar.n = bar.last_print_n = have  # a restart from zero moves the count back; nothing drawn before 0.5 s
        try:
            f = open(part, "ab" if have else "wb")
        except OSError as e:
            raise DataError(f"cannot write {part}: {e.strerror or e}; choose a writable folder") from e
        with f:
            while chunk := response.read(CHUNK_BYTES):
                try:
                    f.write(chunk)
                except OSError as e:
                    raise DataError(f"cannot write {part}: {e.strerror or e}; free some space or choose another "
                                    "folder") from e
                bar.update(len(chunk))
    return total


def _content_range(value: str) -> tuple[int, int | None]:
    match = re.fullmatch(r"bytes (\d+)-\d+/(\d+|\*)", value.strip())
    if match is None:
        raise _Retry(f"the server sent 206 with Content-Range '{value}'; retrying")
    return int(match.group(1)), None if match.group(2) == "*" else int(match.group(2))


def _range_total(value: str) -> int | None:
    match = re.fullmatch(r"bytes \*/(\d+)", value.strip())
    return int(match.group(1)) if match else None


def _describe(error: BaseException) -> str:
    """One line for a connection-level failure (no HTTP status): DNS, refused, reset, timeout, short read."""
    if isinstance(error, urllib.error.URLError) and not isinstance(error, urllib.error.HTTPError):
        error = error.reason if isinstance(error.reason, BaseException) else error
    text = str(error).replace("\n", " ") or "no details"
    return f"no HTTP status, {type(error).__name__}: {text}"


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


def _commit(part: Path, dest: Path) -> None:
    """fsync ``part``, rename it to ``dest`` and fsync the folder, so a crash leaves the old or the new state."""
    with open(part, "rb") as f:
        os.fsync(f.fileno())
    os.replace(part, dest)
    if hasattr(os, "O_DIRECTORY"):
        fd = os.open(dest.parent, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
