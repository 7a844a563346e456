"""Changing persons on a steward's word: merge two persons, split one, take a record
out. Automation never undoes these: each leaves a constraint (same / not the same)
that the linker and `rebuild` respect, an identity audit entry and an event.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from canonical.messages import Envelope, MessageType
from hub.identity import repository as repo
from hub.outbox import add_to_outbox
from hub.persons import new_person_id, refresh_person
from hub.store.tables.identity import IdentityRecordRow
from identity_index.clustering import cluster_batch
from identity_index.features import PersonFeatures
from identity_index.model import Model
from identity_index.scoring import Scorer

EVENT_SOURCE = "identity"


class StewardshipError(ValueError):
    """The change would break a constraint (two NHS numbers, a steward's earlier decision)."""


def features_of(session: Session, refs: list[str]) -> dict[str, PersonFeatures]:
    out = {}
    for part in repo.chunks(sorted(refs)):
        for row in session.execute(select(IdentityRecordRow).where(IdentityRecordRow.ref_key.in_(part))).scalars():
            out[row.ref_key] = PersonFeatures.from_json(row.features)
    return out


def merge_persons(session: Session, person_a: str, person_b: str, *, actor: str, reason: str,
                  model: Model, made_by: str = "steward", rule: str | None = None) -> str:
    """Make two persons one; the one with more records survives and the other redirects to it."""
    if person_a == person_b:
        return person_a
    groups = repo.members(session, [person_a, person_b])
    feats = features_of(session, groups.get(person_a, []) + groups.get(person_b, []))
    nhs = {f.nhs for f in feats.values() if f.nhs}
    if len(nhs) > 1:
        raise StewardshipError(f"persons {person_a} and {person_b} hold different NHS numbers ({', '.join(sorted(nhs))})")
    for a, b, same in repo.constraints_touching(session, feats):
        owner = {r: p for p, refs in groups.items() for r in refs}
        if not same and a in owner and b in owner and owner[a] != owner[b]:
            raise StewardshipError(f"a steward decided {a} and {b} are not the same person")
    survivor, retired = sorted((person_a, person_b), key=lambda p: (-len(groups.get(p, [])), p))
    moved = repo.retire_person(session, retired, survivor)
    for ref in moved:
        repo.add_link(session, ref, survivor, made_by=made_by, model_version=model.version, actor=actor,
                      note=reason, rule=rule)
    session.flush()
    refresh_person(session, survivor)
    repo.audit(session, actor, "merge", {"survivor": survivor, "retired": retired, "refs": moved, "reason": reason})
    _publish(session, MessageType.IDENTITY_MERGED, survivor, {"retired": retired, "refs": moved, "actor": actor})
    return survivor


def split_person(session: Session, person_id: str, *, actor: str, reason: str, model: Model) -> list[str]:
    """Re-cluster one person's records under the stewards' constraints. The largest part keeps
    the id; every other part becomes a new person. Returns the person ids afterwards."""
    refs = repo.members(session, [person_id]).get(person_id, [])
    feats = features_of(session, refs)
    scorer = Scorer(model)
    ordered = sorted(feats)
    scores = [scorer.score(feats[a], feats[b]) for i, a in enumerate(ordered) for b in ordered[i + 1:]]
    constraints = [c for c in repo.constraints_touching(session, ordered) if c[0] in feats and c[1] in feats]
    result = cluster_batch(ordered, {r: f.nhs for r, f in feats.items()}, scores,
                           must_link=[(a, b) for a, b, same in constraints if same],
                           cannot_link=[(a, b) for a, b, same in constraints if not same])
    parts = sorted(result.clusters().values(), key=lambda m: (-len(m), min(m)))
    if len(parts) <= 1:
        return [person_id]
    new_ids = []
    for part in parts[1:]:
        pid = new_person_id()
        new_ids.append(pid)
        repo.move_records(session, part, pid)
        for ref in part:
            repo.add_link(session, ref, pid, made_by="steward", model_version=model.version, actor=actor,
                          note=f"split from {person_id}: {reason}")
    session.flush()
    for pid in [person_id, *new_ids]:
        refresh_person(session, pid)
    detail = {"person_id": person_id, "new_person_ids": new_ids, "parts": parts, "reason": reason}
    repo.audit(session, actor, "split", detail)
    _publish(session, MessageType.IDENTITY_UNMERGED, person_id, {"new_person_ids": new_ids, "parts": parts,
                                                                 "actor": actor})
    return [person_id, *new_ids]


def unlink_record(session: Session, ref: str, *, actor: str, reason: str, model: Model) -> str:
    """Take one record out of its person into a new one, and record that it is not the same
    as any record left behind."""
    person_id = repo.current_person(session, ref)
    if person_id is None:
        raise StewardshipError(f"no linked person record {ref}")
    others = [r for r in repo.members(session, [person_id]).get(person_id, []) if r != ref]
    if not others:
        return person_id
    for other in others:
        repo.set_constraint(session, ref, other, same=False, actor=actor, reason=reason)
    pid = new_person_id()
    repo.move_records(session, [ref], pid)
    repo.add_link(session, ref, pid, made_by="steward", model_version=model.version, actor=actor,
                  note=f"unlinked from {person_id}: {reason}")
    session.flush()
    refresh_person(session, person_id)
    refresh_person(session, pid)
    repo.audit(session, actor, "unlink", {"ref": ref, "from": person_id, "to": pid, "reason": reason})
    _publish(session, MessageType.IDENTITY_UNMERGED, person_id, {"new_person_ids": [pid], "parts": [others, [ref]],
                                                                 "actor": actor})
    return pid


def _publish(session: Session, kind: MessageType, person_id: str, payload: dict) -> None:
    add_to_outbox(session, [Envelope(type=kind, source_system=EVENT_SOURCE, payload={
        "person_id": person_id, "version": repo.person_version(session, person_id) - 1, **payload})])
