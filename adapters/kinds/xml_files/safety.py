"""What a file must pass before any record is read: a safe prolog (no entity declarations),
well-formedness and the XSD, with the hardened parser settings every parse uses."""

from __future__ import annotations

import hashlib
import pathlib
import re

from lxml import etree

from adapters.kinds.common import SourceConfigError
from adapters.kinds.xml_files.config import HARDENED
from adapters.kinds.xml_files.records import release


class XmlRejected(ValueError):
    """The file is refused before any record is read (unsafe DOCTYPE, empty file)."""


def check_safe(path: pathlib.Path) -> None:
    """Read the prolog only; refuse empty files and any DOCTYPE that declares entities."""
    if path.stat().st_size == 0:
        raise XmlRejected(f"{path.name} is empty")
    with path.open("rb") as fh:  # first as text: newer libxml2 stops at the expansion before the prolog is seen
        _refuse_entities(path, _declared_in_text(fh.read(PROLOG_BYTES).decode("utf-8", errors="replace")))
    with path.open("rb") as fh:
        for _, elem in etree.iterparse(fh, events=("start",), **HARDENED):
            dtd = elem.getroottree().docinfo.internalDTD
            _refuse_entities(path, [e.name for e in dtd.iterentities()] if dtd is not None else [])
            return


PROLOG_BYTES = 1 << 16
_ENTITY = re.compile(r"<!ENTITY\s+(?:%\s+)?([^\s\"'>]+)")


def _declared_in_text(head: str) -> list[str]:
    """Entity names declared in the DOCTYPE's internal subset, read as text (never expanded)."""
    start = head.find("<!DOCTYPE")
    if start < 0:
        return []
    end = head.find("]>", start)
    return _ENTITY.findall(head[start:end if end >= 0 else len(head)])


def _refuse_entities(path: pathlib.Path, declared: list[str]) -> None:
    if declared:
        raise XmlRejected(
            f"{path.name} declares entities in its DOCTYPE ({', '.join(declared[:5])}): refused, "
            "since entity declarations are how XXE and entity-expansion (billion laughs) attacks work")


class _NoTree:
    """A parser target that builds nothing: libxml2 checks the whole file at C speed."""

    def close(self) -> None:
        return None


def check_well_formed(path: pathlib.Path) -> None:
    with path.open("rb") as fh:
        etree.parse(fh, etree.XMLParser(target=_NoTree(), **HARDENED))


def validate(path: pathlib.Path, schema: etree.XMLSchema) -> None:
    """A streaming pass against the XSD, before any record is announced."""
    try:
        with path.open("rb") as fh:
            for _, elem in etree.iterparse(fh, events=("end",), schema=schema, **HARDENED):
                release(elem)
    except etree.XMLSyntaxError as exc:
        if 1800 <= exc.code < 1900:  # libxml2's XML_SCHEMAV_* codes: well-formed, but not valid
            raise XmlRejected(f"{path.name} does not match its XSD: {exc.msg}") from None
        raise


def load_schema(path: pathlib.Path) -> etree.XMLSchema:
    try:
        return etree.XMLSchema(etree.parse(str(path), etree.XMLParser(**HARDENED)))
    except (OSError, etree.XMLSyntaxError, etree.XMLSchemaParseError) as exc:
        raise SourceConfigError(f"source.schema: cannot load the XSD {path}: {exc}") from None


def describe(path: pathlib.Path, exc: Exception) -> str:
    if isinstance(exc, XmlRejected):
        return str(exc)
    message = str(exc).replace(str(path), path.name)
    if "encoding" in message.lower() or "utf-8" in message.lower():
        return f"{path.name} is not in its declared encoding: {message}"
    if isinstance(exc, etree.XMLSyntaxError):
        return f"{path.name} is not well-formed XML: {message}"
    return f"{path.name} could not be read: {message}"


def where(path: pathlib.Path, exc: Exception) -> str:
    line = getattr(exc, "lineno", None)
    return f"{path.name}:{line}" if line else path.name


def head(path: pathlib.Path, limit: int = 300) -> str:
    try:
        with path.open("rb") as fh:
            return fh.read(limit).decode("utf-8", errors="replace")
    except OSError:
        return ""


def sha256(path: pathlib.Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
