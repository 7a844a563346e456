"""Canonical model of the transition hub: the one vocabulary every legacy system is translated into."""

from canonical.codes import (
    AddressType,
    ContactKind,
    DatePrecision,
    EntityKind,
    IdentifierScheme,
    InvolvementKind,
    InvolvementStatus,
    NameType,
    RelationshipKind,
    Sensitivity,
    ServiceCategory,
    Sex,
)
from canonical.involvement import Involvement, Relationship
from canonical.messages import Envelope, MessageType
from canonical.person import (
    Address,
    ContactDetail,
    Identifier,
    PartialDate,
    Period,
    Person,
    PersonName,
    nhs_number_is_valid,
    normalise_postcode,
)
from canonical.records import Provenance, SourceRecord, SourceRef, content_hash
from canonical.version import SCHEMA_VERSION

__all__ = [
    "SCHEMA_VERSION", "Address", "AddressType", "ContactDetail", "ContactKind", "DatePrecision",
    "EntityKind", "Envelope", "Identifier", "IdentifierScheme", "Involvement", "InvolvementKind",
    "InvolvementStatus", "MessageType", "NameType", "PartialDate", "Period", "Person", "PersonName",
    "Provenance", "Relationship", "Sensitivity", "ServiceCategory", "Sex", "SourceRecord",
    "SourceRef", "content_hash", "nhs_number_is_valid", "normalise_postcode",
]
