"""The keys competing workers lock before linking: every blocking key of the record."""

from __future__ import annotations

from hub.identity.linker import IdentityLinker
from hub.worker_locks import batch_lock_keys
from identity_index.model import default_model
from tests.unit.identity.identity_factory import record, upserted_envelope


def test_records_that_could_be_compared_share_a_lock_key():
    linker = IdentityLinker(default_model())
    a = record("social_care", "C1", "Amy", "Smith", "2015-03-02")
    b = record("education", "U1", "Amy", "Smyth", "2015-02-03")  # sound-alike surname, transposed date
    c = record("youth_service", "Y1", "Zed", "Quennell", "1980-01-01", postcode="SW1A 1AA")
    keys = {r.ref.key: set(linker.lock_keys(r)) for r in (a, b, c)}
    assert all(k.startswith("block:") for k in keys["social_care/person/C1"])
    assert keys["social_care/person/C1"] & keys["education/person/U1"]
    assert not keys["social_care/person/C1"] & keys["youth_service/person/Y1"]


def test_the_worker_locks_the_linkers_keys():
    linker = IdentityLinker(default_model())
    a = record("social_care", "C1", "Amy", "Smith", "2015-03-02")
    ids = batch_lock_keys([upserted_envelope(a)], linker)
    assert len(ids) == len(set(linker.lock_keys(a))) + 1  # its keys and its own reference
