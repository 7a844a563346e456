"""Reading records: the record elements of a file, streamed and released, and the values
an entity's `id_xpath`, `fields` and `observed_xpath` take from each."""

from __future__ import annotations

import datetime as dt
import pathlib
import re
from collections.abc import Callable, Iterator
from typing import Any

from lxml import etree

from adapters.kinds.common import SourceConfigError
from adapters.kinds.xml_files.config import HARDENED, XmlEntity


class RecordReader:
    """One entity's compiled readers: each takes a record element and returns a value."""

    def __init__(self, name: str, ent: XmlEntity, namespaces: dict[str, str]) -> None:
        def xpath(expr: str, what: str) -> etree.XPath:
            try:
                return etree.XPath(expr, namespaces=namespaces, smart_strings=False)
            except etree.XPathSyntaxError as exc:
                raise SourceConfigError(f"entities.{name}.{what}: bad XPath {expr!r}: {exc}") from None

        def getter(expr: str, what: str, many: bool = False) -> Callable[[Any, dict], Any]:
            fast = None if many else _plain_path(expr, namespaces)
            if fast is not None:
                self.indexed = self.indexed or fast[1]
                return fast[0]
            compiled = xpath(expr, what)
            return lambda elem, children: xpath_value(compiled(elem), many)

        self.name, self.ent, self.indexed = name, ent, False
        self.steps = [clark(s, namespaces) for s in ent.steps]
        self.absolute = (ent.record_xpath or "").startswith("/")
        self.id = getter(ent.id_xpath, "id_xpath")
        self.fields = {f: getter(spec, f"fields.{f}") if isinstance(spec, str)
                       else getter(spec.xpath, f"fields.{f}", spec.many) for f, spec in ent.fields.items()}
        self.delete = xpath(ent.delete_xpath, "delete_xpath") if ent.delete_xpath else None
        self.observed = getter(ent.observed_xpath, "observed_xpath") if ent.observed_xpath else None

    def children(self, elem: Any) -> dict[str, Any]:
        """The record's child elements by tag (the first of each), read in one pass: for the
        plain `Name` paths, several times faster than one XPath evaluation each."""
        if not self.indexed:
            return {}
        found: dict[str, Any] = {}
        for child in elem:
            found.setdefault(child.tag, child)
        return found

    def selects(self, elem: Any) -> bool:
        """Whether `elem` (whose tag is the last step) sits where record_xpath says."""
        if len(self.steps) == 1 and not self.absolute:
            return True
        chain = [elem.tag]
        parent = elem.getparent()
        while parent is not None:
            chain.append(parent.tag)
            parent = parent.getparent()
        chain.reverse()
        return chain == self.steps if self.absolute else chain[-len(self.steps):] == self.steps

    def raw(self, elem: Any, children: dict[str, Any]) -> dict[str, Any]:
        if not self.fields:
            return element_fields(elem)
        return {name: get(elem, children) for name, get in self.fields.items()}


def read_records(path: pathlib.Path, readers: list[RecordReader]) -> Iterator[tuple[RecordReader, Any]]:
    by_tag: dict[str, list[RecordReader]] = {}
    for reader in readers:
        by_tag.setdefault(reader.steps[-1], []).append(reader)
    if not by_tag:
        return
    with path.open("rb") as fh:
        for _, elem in etree.iterparse(fh, events=("end",), tag=list(by_tag), **HARDENED):
            for reader in by_tag[elem.tag]:
                if reader.selects(elem):
                    yield reader, elem
            release(elem)


def release(elem: Any) -> None:
    """Free a processed element and everything before it, keeping memory flat."""
    elem.clear(keep_tail=True)
    parent = elem.getparent()
    if parent is not None:
        while elem.getprevious() is not None:
            del parent[0]


def element_fields(elem: Any) -> dict[str, Any]:
    """Attributes as `@name`, child elements' text by local name (a list when repeated)."""
    raw: dict[str, Any] = {f"@{etree.QName(k).localname}": v for k, v in elem.attrib.items()}
    for child in elem:
        if not isinstance(child.tag, str):
            continue
        name, text = etree.QName(child).localname, "".join(child.itertext())
        if name in raw:
            raw[name] = (raw[name] if isinstance(raw[name], list) else [raw[name]]) + [text]
        else:
            raw[name] = text
    return raw


_PLAIN_CHILD = re.compile(r"^((?:[A-Za-z_][\w.-]*:)?[A-Za-z_][\w.-]*)(/text\(\))?$")

_PLAIN_ATTRIBUTE = re.compile(r"^@([A-Za-z_][\w.-]*)$")


def _plain_path(expr: str, namespaces: dict[str, str]) -> tuple[Callable[[Any, dict], Any], bool] | None:
    """A reader for `Name`, `Name/text()` or `@attr` that needs no XPath (and whether it uses
    the record's children index); None for any other expression."""
    if match := _PLAIN_ATTRIBUTE.match(expr):
        attribute = match.group(1)
        return (lambda elem, children: elem.get(attribute)), False
    match = _PLAIN_CHILD.match(expr)
    if match is None:
        return None
    tag, text_node = clark(match.group(1), namespaces), bool(match.group(2))

    def child_text(elem: Any, children: dict[str, Any]) -> Any:
        child = children.get(tag)
        if child is None:
            return None
        if text_node:
            return child.text
        return (child.text or "") if len(child) == 0 else "".join(child.itertext())

    return child_text, True


def xpath_value(result: Any, many: bool) -> Any:
    if isinstance(result, list):
        values = [_text(r) for r in result]
        return values if many else (values[0] if values else None)
    return [result] if many else result


def _text(item: Any) -> Any:
    if isinstance(item, (str, bytes)):
        return str(item)
    if hasattr(item, "itertext"):
        return "".join(item.itertext())
    return item


def parse_datetime(value: Any) -> dt.datetime | None:
    try:
        return dt.datetime.fromisoformat(str(value).strip()) if value not in (None, "") else None
    except ValueError:
        return None


def clark(step: str, namespaces: dict[str, str]) -> str:
    if ":" not in step:
        return step
    prefix, local = step.split(":", 1)
    if prefix not in namespaces:
        raise SourceConfigError(f"namespace prefix {prefix!r} is not declared in source.namespaces")
    return f"{{{namespaces[prefix]}}}{local}"
