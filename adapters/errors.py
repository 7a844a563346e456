"""The adapters package's own errors, caught at the hub's edges."""

from __future__ import annotations

from pathlib import Path


class MappingError(ValueError):
    """A mapping file is wrong: names the file, the line and the field."""

    def __init__(self, message: str, *, file: str | Path | None = None, line: int | None = None,
                 field: str | None = None) -> None:
        self.message, self.file, self.line, self.field = message, str(file) if file else None, line, field
        where = ":".join(str(p) for p in (self.file, self.line) if p is not None)
        super().__init__(" ".join(p for p in (f"{where}:" if where else "", f"{field}:" if field else "", message)
                                  if p))


class TranslationError(ValueError):
    """A legacy row could not be translated; `reasons` holds every problem found, not just the first."""

    def __init__(self, reasons: list[str]) -> None:
        self.reasons = list(reasons)
        super().__init__("; ".join(self.reasons))
