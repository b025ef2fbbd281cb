"""Registries of what a config picks by name: tasks, network families, loss terms, metrics
and export formats.

An entry is added by a decorator, from inside kdgan or from a user's own package (fairseq's
`@register_task`): adding a task never edits the loop, the terms, the CLI or the report.

    from kdgan.registry import TASKS

    @TASKS.register("sinusoids")
    class Sinusoids(Task): ...

kdgan's own entries (the image tasks and their networks, the built-in terms) are registered
when a registry is first read, so importing one module never has to import them all. So are
a user's: the modules named by installed packages' `kdgan.plugins` entry points, and those
listed in $KDGAN_PLUGINS (comma-separated module names, importable from sys.path), which
is how the `kdgan` command finds a task package.
"""

from __future__ import annotations

import importlib
import os
import sys
from importlib.metadata import entry_points
from typing import Any, Callable, Generic, Iterator, TypeVar

from kdgan.errors import UserError

T = TypeVar("T")

# Modules whose import registers kdgan's built-in entries.
BUILTINS = ("kdgan.tasks.image", "kdgan.nets.cycle", "kdgan.distill.terms", "kdgan.deploy", "kdgan.tasks.audio",
            "kdgan.tasks.text")


class Registry(Generic[T]):
    def __init__(self, kind: str):
        self.kind = kind  # what an entry is, for error lines: "task", "generator family", ...
        self._entries: dict[str, T] = {}
        self._rank: dict[str, int] = {}  # where the registering module sits in BUILTINS (plugins last)

    def register(self, name: str, entry: T | None = None) -> Callable[[T], T] | T:
        """`@REGISTRY.register("name")` on a class or function, or `REGISTRY.register("name", obj)`."""

        def add(obj: T) -> T:
            load_builtins()
            known = self._entries.get(name)
            if known is not None and known is not obj and _qualname(known) != _qualname(obj):
                raise ValueError(f"{self.kind} {name!r} is already registered ({_qualname(known)})")
            self._entries[name] = obj
            self._rank[name] = _rank(_registering_module())
            return obj

        return add if entry is None else add(entry)

    def get(self, name: str, field: str) -> T:
        """The entry called `name`; an unknown name is the user's mistake in `field`."""
        entries = self.entries()
        if name not in entries:
            raise UserError(f"{field}: unknown {name!r}; valid: {', '.join(entries)}")
        return entries[name]

    def entries(self) -> dict[str, T]:
        """Every entry: kdgan's own first, in BUILTINS order, then plugins, each group in the
        order registered (whatever order the modules happened to be imported in)."""
        load_builtins()
        names = sorted(self._entries, key=lambda n: self._rank[n])  # a stable sort
        return {n: self._entries[n] for n in names}

    def names(self) -> list[str]:
        return list(self.entries())

    def __contains__(self, name: object) -> bool:
        return name in self.entries()

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())


def _qualname(obj: Any) -> str:
    # a module imported twice (as a script and a package) registers an equal class twice
    return f"{getattr(obj, '__module__', '?')}.{getattr(obj, '__qualname__', type(obj).__name__)}"


def _registering_module() -> str:
    frame = sys._getframe(1)
    while frame is not None and frame.f_globals.get("__name__") == __name__:
        frame = frame.f_back
    return frame.f_globals.get("__name__", "") if frame is not None else ""


def _rank(module: str) -> int:
    for i, builtin in enumerate(BUILTINS):
        if module == builtin or module.startswith(builtin + "."):
            return i
    return len(BUILTINS)


_loaded = False


def load_builtins() -> None:
    global _loaded
    if _loaded:
        return
    _loaded = True
    for module in BUILTINS:
        importlib.import_module(module)
    for entry in entry_points(group="kdgan.plugins"):
        entry.load()
    for module in filter(None, (m.strip() for m in os.environ.get("KDGAN_PLUGINS", "").split(","))):
        try:
            importlib.import_module(module)
        except ImportError as err:
            raise UserError(f"KDGAN_PLUGINS: cannot import {module!r} ({err}); list importable module names") from None


TASKS: Registry = Registry("task")
GENERATORS: Registry = Registry("generator family")
DISCRIMINATORS: Registry = Registry("discriminator family")
TERMS: Registry = Registry("distillation term")
METRICS: Registry = Registry("metric")
EXPORTERS: Registry = Registry("export format")
