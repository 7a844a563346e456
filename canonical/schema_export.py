"""JSON Schema of the canonical model, for legacy teams and the OpenAPI document."""

from __future__ import annotations

from typing import Any

from canonical.involvement import Involvement, Relationship
from canonical.messages import Envelope
from canonical.person import Person
from canonical.records import SourceRecord
from canonical.version import SCHEMA_VERSION

EXPORTED = {
    "Person": Person,
    "Involvement": Involvement,
    "Relationship": Relationship,
    "SourceRecord": SourceRecord,
    "Envelope": Envelope,
}


def json_schemas() -> dict[str, dict[str, Any]]:
    """One JSON Schema per exported model, each tagged with the schema version."""
    out = {}
    for name, model in EXPORTED.items():
        schema = model.model_json_schema()
        schema["$id"] = f"urn:transition-hub:canonical:{SCHEMA_VERSION}:{name}"
        schema["x-schema-version"] = SCHEMA_VERSION
        out[name] = schema
    return out
