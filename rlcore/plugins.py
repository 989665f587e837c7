"""Name-keyed registries that built-ins and third-party plugins share.

Every extension point of rlcore (algorithms, reward shapers, reward functions, subcommands) is a :class:`Registry`
over one entry-point group. Built-ins are declared in rlcore's own ``pyproject.toml`` exactly as a plugin declares
its own, so there is one mechanism and one place a name is written::

    [project.entry-points."rlcore.shapers"]
    my_shaper = "my_package.module:MY_SHAPER"

Names are read from the installed metadata without importing anything (``rlcore --help`` stays fast); a target is
imported when it is first asked for. :meth:`Registry.register` adds an object in-process (notebooks, tests).
A missing name, or a target that fails to import, is a one-line :class:`rlcore.errors.UserError`.
"""

from __future__ import annotations

import difflib
import importlib
from importlib import metadata
from typing import Any, Generic, TypeVar

from rlcore.errors import UserError

T = TypeVar("T")


def load_target(target: str) -> Any:
    """Import ``"package.module:attribute"`` and return the attribute (dotted attributes allowed)."""
    module_name, sep, attr = target.partition(":")
    if not sep or not module_name or not attr:
        raise UserError(f"'{target}' is not of the form package.module:attribute")
    module = importlib.import_module(module_name)
    obj: Any = module
    for part in attr.split("."):
        obj = getattr(obj, part)
    return obj


class Registry(Generic[T]):
    """The entry-point group ``group`` (e.g. ``rlcore.shapers``) as a name -> object table.

    ``kind`` names one entry in messages ("algorithm", "reward shaper", ...).
    """

    def __init__(self, group: str, kind: str):
        self.group = group
        self.kind = kind
        self._added: dict[str, T] = {}
        self._loaded: dict[str, T] = {}

    def targets(self) -> dict[str, str]:
        """Name -> ``"module:attribute"`` of every installed entry point of the group (nothing imported)."""
        return {ep.name: ep.value for ep in metadata.entry_points(group=self.group)}

    def names(self) -> list[str]:
        """Every registered name, sorted: installed entry points and in-process registrations."""
        return sorted({*self.targets(), *self._added})

    def __contains__(self, name: object) -> bool:
        return name in self._added or name in self.targets()

    def register(self, name: str, obj: T) -> T:
        """Add ``obj`` under ``name`` for this process (it shadows an entry point of the same name)."""
        self._added[name] = obj
        self._loaded.pop(name, None)
        return obj

    def get(self, name: str) -> T:
        """The object registered as ``name``; one-line UserError when unknown or when its module fails to import."""
        if name in self._added:
            return self._added[name]
        if name in self._loaded:
            return self._loaded[name]
        target = self.targets().get(name)
        if target is None:
            close = difflib.get_close_matches(name, self.names(), n=3)
            hint = f" (did you mean {', '.join(close)}?)" if close else ""
            plugin = "" if close else (f"; if a plugin provides it, pip install that package (it declares the "
                                       f"entry-point group '{self.group}')")
            raise UserError(f"unknown {self.kind} '{name}'{hint}; registered: {', '.join(self.names()) or 'none'}"
                            f"{plugin}")
        try:
            obj = load_target(target)
        except (ImportError, AttributeError) as e:
            raise UserError(f"{self.kind} '{name}' is registered as '{target}' in entry-point group '{self.group}', "
                            f"which cannot be loaded: {type(e).__name__}: {e}") from e
        self._loaded[name] = obj
        return obj

    def items(self) -> list[tuple[str, T]]:
        """Every (name, object), importing each target."""
        return [(name, self.get(name)) for name in self.names()]
