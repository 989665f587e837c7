"""Dataclass configs <- YAML presets <- CLI overrides, type-checked, with helpful errors.

A config is a (possibly nested) dataclass whose fields carry their paper defaults and an attribute docstring
(a string literal right below the field, as in CleanRL/tyro). Values are layered:

    defaults of the dataclass  <-  YAML preset (``--config``)  <-  ``--set key.sub=value`` overrides

Every layer is type-checked against the field annotations; an unknown key is an error that names the closest
valid keys. ``to_dict`` / ``save_yaml`` write the resolved config into the run directory.
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import types
import typing
from pathlib import Path
from typing import Any, Literal, TypeVar, Union

import yaml

from rlcore.errors import ConfigError

C = TypeVar("C")

# Top-level YAML key naming the algorithm a preset is for; checked against the command, not a config field.
ALGO_KEY = "algo"

class _Text(str):
    """A value typed on the command line: parsed into the field's type (YAML values must already have it)."""


_TRUE = {"true", "yes", "on", "1"}
_FALSE = {"false", "no", "off", "0"}


def type_name(tp: Any) -> str:
    if isinstance(tp, type):
        return tp.__name__
    return str(tp).replace("typing.", "")


@functools.cache
def field_types(cls: type) -> dict[str, Any]:
    """Resolved type annotations of a dataclass's fields (cached)."""
    return typing.get_type_hints(cls)


def _coerce(value: Any, tp: Any, key: str) -> Any:
    """Return ``value`` converted to type ``tp`` or raise ConfigError naming ``key``.

    Command-line text (:class:`_Text`) is parsed into the target type; YAML values must already have it
    (an int is accepted where a float is expected).
    """
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if tp is Any:
        return value
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise ConfigError(f"config key '{key}' must be a mapping of {tp.__name__} fields, got {value!r}")
        return from_dict(tp, value, prefix=f"{key}.")
    if origin in (Union, types.UnionType):
        if value is None or (isinstance(value, _Text) and value.lower() in ("none", "null")):
            if type(None) in args:
                return None
        options = [arg for arg in args if arg is not type(None)]
        if len(options) == 1:  # Optional[X]: X's own, more specific, error
            return _coerce(value, options[0], key)
        for arg in options:
            try:
                return _coerce(value, arg, key)
            except ConfigError:
                continue
        raise ConfigError(f"config key '{key}' expects {type_name(tp)}, got {value!r}")
    if origin is Literal:
        if value in args:
            return args[args.index(value)]  # the literal itself (not the command-line text object)
        raise ConfigError(f"config key '{key}' must be one of {list(args)}, got {value!r}")
    if tp is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, _Text) and value.lower() in _TRUE | _FALSE:
            return value.lower() in _TRUE
        raise ConfigError(f"config key '{key}' expects true/false, got {value!r}")
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, _Text):
            try:
                return int(value.replace("_", ""))
            except ValueError:
                pass
        raise ConfigError(f"config key '{key}' expects an integer, got {value!r}")
    if tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, _Text):
            try:
                return float(value)
            except ValueError:
                pass
        raise ConfigError(f"config key '{key}' expects a number, got {value!r}")
    if tp is str:
        if isinstance(value, str):
            return str(value)
        raise ConfigError(f"config key '{key}' expects a string, got {value!r} (quote it in YAML)")
    if origin in (list, tuple):
        if isinstance(value, _Text):
            text = value.strip()
            if text.startswith("["):
                try:
                    value = yaml.safe_load(text)
                except yaml.YAMLError as e:
                    raise ConfigError(f"config key '{key}' expects a list like [1, 2] or 1,2; got {text!r}") from e
            else:
                value = [_Text(v.strip()) for v in text.split(",") if v.strip()]
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"config key '{key}' expects a list, got {value!r}")
        if origin is tuple and not (len(args) == 2 and args[1] is Ellipsis):
            if len(value) != len(args):
                raise ConfigError(f"config key '{key}' expects {len(args)} values, got {len(value)}")
            return tuple(_coerce(v, a, f"{key}[{i}]") for i, (v, a) in enumerate(zip(value, args)))
        item = args[0] if args else Any
        items = [_coerce(v, item, f"{key}[{i}]") for i, v in enumerate(value)]
        return tuple(items) if origin is tuple else items
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"config key '{key}' expects a mapping, got {value!r}")
        kt, vt = args if args else (Any, Any)
        return {_coerce(k, kt, key): _coerce(v, vt, f"{key}.{k}") for k, v in value.items()}
    raise ConfigError(f"config key '{key}' has an unsupported type {type_name(tp)}")


def _unknown_key_error(cls: type, key: str, prefix: str) -> ConfigError:
    names = [f.name for f in dataclasses.fields(cls)]
    close = difflib.get_close_matches(key, names, n=3, cutoff=0.5)
    hint = f"did you mean {', '.join(repr(prefix + c) for c in close)}? " if close else ""
    return ConfigError(
        f"unknown config key '{prefix}{key}' for {cls.__name__}; {hint}"
        f"valid keys: {', '.join(prefix + n for n in names)}"
    )


def from_dict(cls: type[C], data: dict[str, Any], prefix: str = "") -> C:
    """Build dataclass ``cls`` from a mapping, type-checking every value; unknown keys are errors."""
    hints = field_types(cls)
    names = {f.name for f in dataclasses.fields(cls) if f.init}
    kwargs = {}
    for key, value in data.items():
        if key not in names:
            raise _unknown_key_error(cls, str(key), prefix)
        kwargs[key] = _coerce(value, hints[key], prefix + key)
    try:
        return cls(**kwargs)
    except ConfigError:
        raise
    except (TypeError, ValueError) as e:
        raise ConfigError(f"invalid {cls.__name__}: {e}") from e


def to_dict(config: Any) -> dict[str, Any]:
    """Plain-Python (YAML/JSON-safe) view of a dataclass config; tuples become lists."""

    def plain(v: Any) -> Any:
        if dataclasses.is_dataclass(v):
            return {f.name: plain(getattr(v, f.name)) for f in dataclasses.fields(v)}
        if isinstance(v, (list, tuple)):
            return [plain(x) for x in v]
        if isinstance(v, dict):
            return {k: plain(x) for k, x in v.items()}
        return v

    return plain(config)


def parse_override(text: str) -> tuple[list[str], str]:
    """Split ``key.sub=value`` into (["key", "sub"], "value")."""
    if "=" not in text:
        raise ConfigError(f"override '{text}' is not of the form key=value (for example --set lr=3e-4)")
    key, value = text.split("=", 1)
    key = key.strip()
    if not key:
        raise ConfigError(f"override '{text}' has an empty key (for example --set lr=3e-4)")
    return key.split("."), value.strip()


def _nest(path: list[str], value: Any) -> dict[str, Any]:
    out: dict[str, Any] = {path[-1]: value}
    for part in reversed(path[:-1]):
        out = {part: out}
    return out


def _merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for k, v in extra.items():
        if isinstance(v, dict) and isinstance(merged.get(k), dict):
            merged[k] = _merge(merged[k], v)
        else:
            merged[k] = v
    return merged


def read_yaml(path: str | Path) -> dict[str, Any]:
    """Read a YAML mapping with clear errors for a missing file, a syntax error or a non-mapping."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"config file '{p}' not found; pass an existing YAML file (presets live in configs/)")
    try:
        data = yaml.safe_load(p.read_text(encoding="utf-8"))
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ConfigError(f"config file '{p}' is not valid YAML{where}; fix the syntax and retry") from e
    except UnicodeDecodeError as e:
        raise ConfigError(f"config file '{p}' is not UTF-8 text; save it as UTF-8 YAML") from e
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"config file '{p}' must hold a mapping of keys to values, got {type(data).__name__}")
    return data


def load_config(
    cls: type[C],
    preset: str | Path | None = None,
    overrides: typing.Sequence[str] = (),
    values: dict[str, Any] | None = None,
    algo: str | None = None,
) -> C:
    """Resolve a config: dataclass defaults <- YAML ``preset`` <- ``values`` (typed flags) <- ``overrides``.

    ``values`` come from typed command-line flags (strings among them are parsed like overrides);
    ``overrides`` are ``key.sub=value`` strings; ``algo``, when given, must match the preset's ``algo:`` key.
    """
    data: dict[str, Any] = {}
    if preset is not None:
        data = read_yaml(preset)
        preset_algo = data.pop(ALGO_KEY, None)
        if algo is not None and preset_algo is not None and preset_algo != algo:
            raise ConfigError(
                f"preset '{preset}' is for '{preset_algo}', not '{algo}'; run `rlcore train {preset_algo} "
                f"--config {preset}` or choose a {algo} preset"
            )
    for key, value in (values or {}).items():
        data = _merge(data, _nest(key.split("."), _Text(value) if isinstance(value, str) else value))
    for text in overrides:
        path, value = parse_override(text)
        data = _merge(data, _nest(path, _Text(value)))
    return from_dict(cls, data)


def save_yaml(config: Any, path: str | Path, algo: str | None = None) -> None:
    """Write the resolved config (with its ``algo`` key) as YAML that ``load_config`` reads back."""
    data = to_dict(config)
    if algo is not None:
        data = {ALGO_KEY: algo, **data}
    Path(path).write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")


def check_range(name: str, value: float, low: float | None = None, high: float | None = None,
                low_open: bool = False, high_open: bool = False) -> None:
    """Raise ConfigError unless ``low (<|<=) value (<|<=) high``."""
    bad_low = low is not None and (value <= low if low_open else value < low)
    bad_high = high is not None and (value >= high if high_open else value > high)
    if bad_low or bad_high:
        lo = "-inf" if low is None else f"{low}"
        hi = "inf" if high is None else f"{high}"
        interval = f"{'(' if low_open or low is None else '['}{lo}, {hi}{')' if high_open or high is None else ']'}"
        raise ConfigError(f"config key '{name}' = {value} is out of range; choose a value in {interval}")
