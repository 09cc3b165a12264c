"""One registry for everything looked up by name: models, datasets and kinds of data.

Example:
    >>> from trainlab.registry import Registry
    >>> shapes = Registry("shape", Shape, group="trainlab.shapes")
    >>> shapes.add("square", Square())
    >>> shapes.get("sqare")
    Traceback (most recent call last):
    ConfigError: unknown shape 'sqare'. Known: square. Did you mean 'square'?

Built-ins register when their module is imported; other packages add theirs through an
entry-point group, read once, on the first name that is not built in (or the first listing).
Every registry refuses a name registered twice, naming both sources (a plugin that silently
replaced a built-in would change what a run computes without a word), and reports a plugin that
fails to import the same way (``trainlab.plugins.load``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from typing import Any, Generic, TypeVar

from trainlab.errors import ConfigError, unknown_name

T = TypeVar("T")
BUILTIN: dict[str, Any] = {"kind": "builtin"}


def describe_source(source: dict[str, Any]) -> str:
    """Where an entry comes from, in words: "trainlab itself", or the plugin and its package."""
    if source.get("kind") == "plugin":
        package = source.get("package")
        version = f" {source['version']}" if source.get("version") else ""
        where = f" of package {package}{version}" if package else ""
        return f"the plugin '{source.get('entry_point', '?')}'{where}"
    if source.get("kind") == "builtin":
        return "trainlab itself"
    return str(source.get("kind", "unknown"))


class Registry(Generic[T]):
    """Names -> entries, with their source; plugins from the entry-point group ``group``.

    Args:
        what: what an entry is, in messages ("model", "dataset", "kind of data").
        entry_type: the type of an entry (what a plugin's entry point may load directly).
        group: the entry-point group other packages register in (None: built-ins only).
        adopt: makes an entry from what a plugin's entry point loads when it is not an entry
            and registered nothing by itself (e.g. a plain factory function), or None to skip it.
    """

    def __init__(
        self,
        what: str,
        entry_type: type,
        group: str | None = None,
        adopt: Callable[[str, Any], T | None] | None = None,
    ):
        self.what, self.entry_type, self.group, self._adopt = what, entry_type, group, adopt
        self._entries: dict[str, T] = {}
        self._sources: dict[str, dict[str, Any]] = {}
        self._plugins_read = group is None
        self._loading: dict[str, Any] | None = None  # the source of the plugin being imported

    def add(self, name: str, entry: T, source: dict[str, Any] | None = None) -> T:
        """Register ``entry`` under ``name``; a name registered already is refused."""
        source = dict(source or self._loading or BUILTIN)
        if name in self._entries:
            raise ConfigError(
                f"{self.what} '{name}' is registered twice: by "
                f"{describe_source(self._sources[name])} and by {describe_source(source)}. "
                "Rename one of them, or uninstall the package that should not provide it."
            )
        if dataclasses.is_dataclass(entry) and "source" in {
            f.name for f in dataclasses.fields(entry)
        }:
            entry = dataclasses.replace(entry, source=source)
        self._entries[name] = entry
        self._sources[name] = source
        return entry

    def lookup(self, name: str) -> T | None:
        """The entry of ``name`` (the plugins are read on the first miss), or None."""
        if name not in self._entries:
            self._read_plugins()
        return self._entries.get(name)

    def get(self, name: str, extra_known: tuple[str, ...] = ()) -> T:
        """The entry of ``name``, or a ConfigError listing the names (and a did-you-mean)."""
        entry = self.lookup(name)
        if entry is None:
            raise unknown_name(self.what, name, [*self._entries, *extra_known])
        return entry

    def all(self) -> dict[str, T]:
        """Every entry: the built-ins, then the installed plugins'."""
        self._read_plugins()
        return dict(self._entries)

    def builtins(self) -> dict[str, T]:
        """The entries trainlab itself registers (plugins are not read)."""
        return {k: v for k, v in self._entries.items() if self._sources[k] == BUILTIN}

    def source(self, name: str) -> dict[str, Any]:
        return dict(self._sources[name])

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.all())

    def _read_plugins(self) -> None:
        """Import every entry point of the group, once; what each registers is recorded as
        its (a failing import is a ConfigError naming the plugin and the package)."""
        if self._plugins_read:
            return
        self._plugins_read = True
        from trainlab import plugins

        for ep, source in plugins.installed(self.group):
            before = set(self._entries)
            self._loading = source
            try:
                obj = plugins.load(ep, self.what)
                added = set(self._entries) - before  # what importing it registered
                if isinstance(obj, self.entry_type):
                    if obj.name not in added:
                        self.add(obj.name, obj, source)
                elif ep.name not in added and self._adopt is not None:
                    adopted = self._adopt(ep.name, obj)
                    if adopted is not None:
                        self.add(ep.name, adopted, source)
            finally:
                self._loading = None
