"""The `xml_files` kind's configuration: the `[source]` table and each entity's keys."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

# every parse of a received file: no entity expansion, no network, no DTD, no huge-tree mode
HARDENED = {"resolve_entities": False, "no_network": True, "load_dtd": False, "huge_tree": False}


class XmlField(BaseModel):
    model_config = ConfigDict(extra="forbid")

    xpath: str
    many: bool = False  # every match as a list, instead of the first


class XmlEntity(BaseModel):
    """The source-side keys of one `[entities.<name>]` block (mapping keys are ignored here)."""

    model_config = ConfigDict(extra="allow")

    record_xpath: str | None = None  # "/export/children/child", "children/child" or "child"
    record_tag: str | None = None
    id_xpath: str = Field(..., min_length=1)
    fields: dict[str, str | XmlField] = Field(default_factory=dict)
    file_glob: str | None = None
    mode: Literal["snapshot", "delta"] | None = None
    delete_xpath: str | None = None  # boolean XPath on the record, for deltas
    observed_xpath: str | None = None  # the record's modified time, ISO 8601

    @model_validator(mode="after")
    def _one_selector(self) -> XmlEntity:
        if (self.record_xpath is None) == (self.record_tag is None):
            raise ValueError("give exactly one of `record_xpath` or `record_tag`")
        path = self.record_xpath or ""
        if "[" in path or "//" in path.lstrip("/") or "*" in path or "@" in path:
            raise ValueError("record_xpath must be a plain element path such as /export/children/child")
        return self

    @property
    def steps(self) -> list[str]:
        return [s for s in (self.record_xpath or self.record_tag or "").split("/") if s]


class XmlSource(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True)

    inbox: str
    archive: str | None = None
    failed: str | None = None
    xsd: str | None = Field(None, alias="schema")
    mode: Literal["snapshot", "delta"] = "snapshot"
    file_glob: str = "*.xml"
    namespaces: dict[str, str] = Field(default_factory=dict)
    batch_size: int = Field(500, ge=1)
