"""The declarative mapping language (see docs/mapping.md): pure Python, no I/O beyond reading the file."""

from adapters.mapping.engine import EntityMapping, FieldMapping, RecordBlock, SystemMapping
from adapters.mapping.values import split_name

__all__ = ["EntityMapping", "FieldMapping", "RecordBlock", "SystemMapping", "split_name"]
