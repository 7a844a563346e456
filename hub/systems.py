"""The registry of legacy systems: one mapping file each in the systems directory."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any


class UnknownSystem(KeyError):
    """No mapping file defines a system of that name."""


class SystemRegistry:
    def __init__(self, directory: str | Path, env: Mapping[str, str] | None = None) -> None:
        self.directory = Path(directory)
        self.env = dict(os.environ if env is None else env)
        self._systems: dict[str, Any] | None = None

    def _load(self) -> dict[str, Any]:
        if self._systems is None:
            from adapters import load_system

            systems = {}
            for path in sorted(self.directory.glob("*.toml")) + sorted(self.directory.glob("*.y*ml")):
                defn = load_system(path, env=self.env)
                systems[defn.name] = defn
            self._systems = systems
        return self._systems

    def names(self) -> list[str]:
        return sorted(self._load())

    def get(self, name: str) -> Any:
        try:
            return self._load()[name]
        except KeyError:
            raise UnknownSystem(f"no mapping file in {self.directory} defines system {name!r}") from None

    def all(self) -> list[Any]:
        return [self._load()[n] for n in self.names()]

    def add(self, defn: Any) -> None:
        self._load()[defn.name] = defn
