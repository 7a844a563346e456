"""Code tables of the canonical model.

Every legacy system has its own codes for the same thing (`M`, `1`, `Male`);
mappings translate them into these values, so the rest of the hub only ever
sees one vocabulary.
"""

from __future__ import annotations

from enum import StrEnum


class Sex(StrEnum):
    MALE = "male"
    FEMALE = "female"
    INDETERMINATE = "indeterminate"
    UNKNOWN = "unknown"


class NameType(StrEnum):
    LEGAL = "legal"
    PREFERRED = "preferred"
    PREVIOUS = "previous"
    BIRTH = "birth"
    ALIAS = "alias"


class DatePrecision(StrEnum):
    DAY = "day"
    MONTH = "month"
    YEAR = "year"


class IdentifierScheme(StrEnum):
    NHS_NUMBER = "nhs_number"
    UPN = "upn"
    NI_NUMBER = "ni_number"
    LOCAL = "local"


class AddressType(StrEnum):
    HOME = "home"
    CORRESPONDENCE = "correspondence"
    PLACEMENT = "placement"
    PREVIOUS = "previous"


class ContactKind(StrEnum):
    PHONE = "phone"
    MOBILE = "mobile"
    EMAIL = "email"


class RelationshipKind(StrEnum):
    """How `related` stands to `subject`: kind=parent means related is subject's parent."""

    PARENT = "parent"
    CHILD = "child"
    CARER = "carer"
    SIBLING = "sibling"
    HOUSEHOLD_MEMBER = "household_member"


class ServiceCategory(StrEnum):
    SOCIAL_CARE = "social_care"
    YOUTH_JUSTICE = "youth_justice"
    EARLY_HELP = "early_help"
    EDUCATION = "education"
    YOUTH_SERVICE = "youth_service"
    CHILDRENS_CENTRES = "childrens_centres"
    HEALTH = "health"


class InvolvementKind(StrEnum):
    REFERRAL = "referral"
    ASSESSMENT = "assessment"
    PLAN = "plan"
    CHILD_IN_NEED_PLAN = "child_in_need_plan"
    CHILD_PROTECTION_PLAN = "child_protection_plan"
    LOOKED_AFTER = "looked_after"
    EXCLUSION = "exclusion"
    ORDER = "order"
    ATTENDANCE = "attendance"
    ENROLMENT = "enrolment"
    REGISTRATION = "registration"
    SESSION = "session"
    EPISODE = "episode"


class InvolvementStatus(StrEnum):
    OPEN = "open"
    CLOSED = "closed"
    PLANNED = "planned"


class Sensitivity(StrEnum):
    NORMAL = "normal"
    SENSITIVE = "sensitive"
    RESTRICTED = "restricted"


class EntityKind(StrEnum):
    PERSON = "person"
    INVOLVEMENT = "involvement"
    RELATIONSHIP = "relationship"
