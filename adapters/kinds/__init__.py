"""Adapter kinds, one module each, resolved lazily by name.

A kind module `adapters.kinds.<kind>` defines

    build(system, source, entities, *, base_dir, env) -> SourceAdapter

and optionally

    columns(source, entity_cfg, *, base_dir, env) -> list[str] | None

which reports the columns an entity's rows carry (None when the kind cannot
tell without running), so a mapping naming a column that does not exist is
rejected when it is loaded rather than when rows arrive; and `READS_GROUPS = True`
when its changes carry their group's other rows (`RawChange.group`), without
which a mapping with `group_relationships` is refused at load.
"""

from __future__ import annotations

import importlib
import re
from types import ModuleType

from adapters.kinds.common import SourceConfigError

KINDS = ("sql", "xml_files", "spreadsheet", "rest")
_NAME = re.compile(r"^[a-z][a-z0-9_]*$")


def kind_module(kind: str) -> ModuleType:
    """The module implementing `kind`; SourceConfigError when there is none."""
    if not _NAME.match(kind or ""):
        raise SourceConfigError(f"adapter kind {kind!r} is not a valid kind name")
    try:
        module = importlib.import_module(f"adapters.kinds.{kind}")
    except ModuleNotFoundError as exc:
        if exc.name == f"adapters.kinds.{kind}":
            raise SourceConfigError(f"unknown adapter kind {kind!r} (known: {', '.join(KINDS)})") from None
        raise
    if not callable(getattr(module, "build", None)):
        raise SourceConfigError(f"adapter kind {kind!r} has no build() function")
    return module
