"""The `xml_files` adapter kind: a drop folder of XML exports, records selected by XPath.

Each file in the inbox (in name order) is first checked whole: a safe prolog (a DOCTYPE
declaring any entity is refused: XXE, billion laughs), a tree-less well-formedness pass,
then the XSD when one is configured. Only then is it read with `lxml.etree.iterparse` on
the record tags, every record released as soon as it is read with the siblings before it,
so a multi-gigabyte export runs in bounded memory and a broken file announces nothing. The
parser is hardened: no network, no DTD loading, no entity expansion, no huge-tree mode.

In `snapshot` mode the files dropped for one run together hold every record of their
entities: ids the hub holds that none of them had are deletions (inferred only when every
file of the run was read and had records of the entity). In `delta` mode files hold only
what changed, and `delete_xpath` marks removals. A file that cannot be read is reported as
a SourceFailure and moved to the `failed` folder beside a `<file>.reason.txt`; a processed
one is moved to `archive` with a timestamp. The cursor `file:<name>` holds the file's
SHA-256, so the same file dropped again is archived without being announced again.
"""

from __future__ import annotations

import pathlib
from collections.abc import Mapping

from adapters.kinds.common import parse_config
from adapters.kinds.xml_files.adapter import XmlFilesAdapter
from adapters.kinds.xml_files.config import XmlEntity, XmlField, XmlSource
from adapters.kinds.xml_files.safety import XmlRejected, load_schema

__all__ = ["XmlEntity", "XmlField", "XmlFilesAdapter", "XmlRejected", "XmlSource", "build", "columns"]


def build(system: str, source: dict, entities: dict[str, dict], *, base_dir: pathlib.Path,
          env: Mapping[str, str]) -> XmlFilesAdapter:
    cfg = parse_config(XmlSource, source, "source", "xml_files")
    parsed = {name: parse_config(XmlEntity, ent, f"entities.{name}", "xml_files") for name, ent in entities.items()}
    inbox = _folder(base_dir, cfg.inbox)
    schema = load_schema(_folder(base_dir, cfg.xsd)) if cfg.xsd else None
    return XmlFilesAdapter(system, inbox=inbox,
                           archive=_folder(base_dir, cfg.archive) if cfg.archive else inbox.parent / "archive",
                           failed=_folder(base_dir, cfg.failed) if cfg.failed else inbox.parent / "failed",
                           entities=parsed, schema=schema, mode=cfg.mode, file_glob=cfg.file_glob,
                           namespaces=cfg.namespaces, batch_size=cfg.batch_size)


def columns(source: dict, entity_cfg: dict, *, base_dir: pathlib.Path,
            env: Mapping[str, str]) -> list[str] | None:
    """The configured field names; None when the record's children are taken as they come."""
    ent = parse_config(XmlEntity, entity_cfg, "entity", "xml_files")
    return list(ent.fields) or None


def _folder(base_dir: pathlib.Path, value: str) -> pathlib.Path:
    path = pathlib.Path(value)
    return path if path.is_absolute() else base_dir / path
