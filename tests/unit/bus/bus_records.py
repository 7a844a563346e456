"""Source records for the bus tests: people with valid NHS numbers, several versions each."""

from __future__ import annotations

import datetime as dt

from canonical.messages import Envelope
from tests.unit.hub.records_factory import person_record, upserted


def valid_nhs_number(serial: int) -> str:
    """The `serial`-th NHS number (from 900 000 000 0 up) whose modulus-11 check digit is valid."""
    base = 900_000_000
    while True:
        digits = [int(d) for d in f"{base + serial:09d}"]
        check = 11 - sum(d * w for d, w in zip(digits, range(10, 1, -1))) % 11
        check = 0 if check == 11 else check
        if check != 10:
            return "".join(map(str, digits)) + str(check)
        serial += 1_000_000  # skip the invalid one without colliding with the next serial


def person_versions(n_people: int, versions_every: int = 3, *, systems: tuple[str, ...] = ("sys_a", "sys_b")
                    ) -> tuple[list[Envelope], dict[str, int]]:
    """Envelopes for `n_people` people, each known to every system by NHS number, name and date
    of birth; every `versions_every`-th record has three versions.
    Returns the envelopes (oldest versions first) and the newest version of each record key."""
    envelopes: list[Envelope] = []
    newest: dict[str, int] = {}
    for i in range(n_people):
        given, family = f"Given{i}", f"Family{i}"
        dob = dt.date(2010, 1, 1) + dt.timedelta(days=i)
        for s, system in enumerate(systems):
            n_versions = 3 if (i + s) % versions_every == 0 else 1
            for v in range(1, n_versions + 1):
                record = person_record(system, f"{system.upper()}{i}", given, family,
                                       dob, nhs=valid_nhs_number(i), version=v,
                                       postcode=f"AB{v} 1CD")
                envelopes.append(upserted(record))
                newest[record.ref.key] = v
    return envelopes, newest
