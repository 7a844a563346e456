"""A trickle of realistic changes made in place to an estate's legacy sources.

Used by the freshness benchmark and the demo: each change is what a practitioner
would do in the legacy front end (record a move, a new referral, correct a name),
is written with the real current time, and is appended to `mutations.jsonl` with
the true person it concerns, so a test can wait for exactly that change to show.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import random
import sqlite3
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from lxml import etree

from hub.estate.generator import Manifest
from hub.estate.pools import TOWNS, build_pools, postcode
from hub.estate.truth_index import TruthIndex

CHANGES = (("address_moved", 25), ("referral_added", 20), ("name_corrected", 10), ("session_added", 15),
           ("pupil_moved", 10), ("young_person_updated", 10), ("order_added", 10))


@dataclass(frozen=True)
class Mutation:
    at: str
    system: str
    entity: str
    source_id: str
    person_id: str
    change: str
    detail: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class _Mutator:
    def __init__(self, root: Path, rng: random.Random) -> None:
        self.root, self.rng = root, rng
        manifest = Manifest.load(root)
        self.pools = build_pools(manifest.seed, school_count=6)
        self.truth = TruthIndex(root)
        self.now = dt.datetime.now(dt.UTC).replace(tzinfo=None, microsecond=0)

    def _address(self) -> tuple[str, str, str]:
        town, districts = self.rng.choice(TOWNS)
        return (f"{self.rng.randrange(1, 180)} {self.rng.choice(self.pools.streets)}", town,
                postcode(self.rng, self.rng.choice(districts)))

    def _mutation(self, system: str, entity: str, source_id: object, person_id: str, change: str,
                  **detail: Any) -> Mutation:
        return Mutation(at=self.now.strftime("%Y-%m-%dT%H:%M:%SZ"), system=system, entity=entity,
                        source_id=str(source_id), person_id=person_id, change=change, detail=detail)

    def _sqlite(self, system: str) -> sqlite3.Connection:
        return sqlite3.connect(self.root / system / f"{system}.db")

    def _social_care_stamp(self, db: sqlite3.Connection) -> str:
        """Now, or a second after the newest `last_modified` when that is not earlier: the case
        system's clock never goes back and two changes never share a second, so a watermark
        read is never confused by second-resolution timestamps."""
        latest = max((db.execute(f"SELECT MAX(last_modified) FROM {t}").fetchone()[0] or "")
                     for t in ("clients", "client_addresses", "referrals"))
        if latest >= self.now.strftime("%Y-%m-%d %H:%M:%S"):
            self.now = dt.datetime.strptime(latest, "%Y-%m-%d %H:%M:%S") + dt.timedelta(seconds=1)
        return self.now.strftime("%Y-%m-%d %H:%M:%S")

    def address_moved(self) -> Mutation | None:
        picked = self.truth.pick(self.rng, "social_care", "clients")
        if not picked:
            return None
        client_id, person_id = int(picked[0]), picked[1]
        line1, town, pc = self._address()
        with self._sqlite("social_care") as db:
            stamp, today = self._social_care_stamp(db), self.now.date().isoformat()
            db.execute("UPDATE client_addresses SET end_date = ?, is_current = 0, last_modified = ? "
                       "WHERE client_id = ? AND is_current = 1", (today, stamp, client_id))
            address_id = db.execute("SELECT COALESCE(MAX(address_id), 900000) + 1 FROM client_addresses").fetchone()[0]
            db.execute("INSERT INTO client_addresses (address_id, client_id, line1, line2, town, postcode, start_date,"
                       " end_date, is_current, last_modified) VALUES (?, ?, ?, NULL, ?, ?, ?, NULL, 1, ?)",
                       (address_id, client_id, line1, town, pc, today, stamp))
            db.execute("UPDATE clients SET last_modified = ? WHERE client_id = ?", (stamp, client_id))
        self.truth.add([("social_care", "client_addresses", str(address_id), person_id, "address", "")])
        return self._mutation("social_care", "client_addresses", address_id, person_id, "address_moved",
                              client_id=client_id, line1=line1, town=town, postcode=pc)

    def referral_added(self) -> Mutation | None:
        """A new referral for a well-formed client who is a child (has been referred before)."""
        with self._sqlite("social_care") as db:
            for _ in range(50):
                picked = self.truth.pick(self.rng, "social_care", "clients")
                if picked and db.execute("SELECT 1 FROM referrals WHERE client_id = ?", (int(picked[0]),)).fetchone():
                    break
            else:
                return None
            client_id, person_id = int(picked[0]), picked[1]
            stamp = self._social_care_stamp(db)
            referral_id = db.execute("SELECT COALESCE(MAX(referral_id), 50000) + 1 FROM referrals").fetchone()[0]
            need = f"N{self.rng.randrange(1, 10)}"
            db.execute("INSERT INTO referrals (referral_id, client_id, referral_date, source_code, need_code, outcome,"
                       " closed_date, worker_id, last_modified) VALUES (?, ?, ?, ?, ?, NULL, NULL, ?, ?)",
                       (referral_id, client_id, self.now.date().isoformat(), self.rng.choice(("POL", "SCH", "HEA")),
                        need, self.rng.choice(self.pools.workers)[0], stamp))
        self.truth.add([("social_care", "referrals", str(referral_id), person_id, "involvement", "")])
        return self._mutation("social_care", "referrals", referral_id, person_id, "referral_added",
                              client_id=client_id, need_code=need)

    def name_corrected(self) -> Mutation | None:
        picked = self.truth.pick(self.rng, "early_help", "family_members")
        if not picked:
            return None
        member_id, person_id = int(picked[0]), picked[1]
        with self._sqlite("early_help") as db:
            old = db.execute("SELECT full_name FROM family_members WHERE member_id = ?", (member_id,)).fetchone()[0]
            surname, _, given = old.partition(", ") if ", " in old else (old.rsplit(" ", 1)[-1].upper(), "",
                                                                          old.rsplit(" ", 1)[0])
            new_surname = f"{surname.split('-')[0]}-{self.pools.surnames.draw(self.rng).upper()}"
            new = f"{new_surname}, {given}"
            db.execute("UPDATE family_members SET full_name = ? WHERE member_id = ?", (new, member_id))
        return self._mutation("early_help", "family_members", member_id, person_id, "name_corrected",
                              old=old, new=new)

    def session_added(self) -> Mutation | None:
        picked = self.truth.pick(self.rng, "youth_service", "members")
        if not picked:
            return None
        member_no, person_id = picked
        path = self.root / "youth_service" / "sessions.csv"
        with path.open(encoding="utf-8-sig", newline="") as f:
            last = max((int(r[0]) for r in csv.reader(f) if r and r[0].isdigit()), default=0)
        session_id = last + 1
        activity = self.rng.choice(("Drop-in", "Sport", "Music", "Cooking"))
        with path.open("a", encoding="utf-8", newline="") as f:
            csv.writer(f, lineterminator="\n").writerow(
                (session_id, member_no, self.now.strftime("%d/%m/%Y"), activity, "Matlock Youth Centre", "Y"))
        self.truth.add([("youth_service", "sessions", str(session_id), person_id, "involvement", "")])
        return self._mutation("youth_service", "sessions", session_id, person_id, "session_added",
                              member_no=member_no, activity=activity)

    def pupil_moved(self) -> Mutation | None:
        picked = self.truth.pick(self.rng, "education", "pupils")
        if not picked:
            return None
        pupil_id, person_id = picked
        estab = pupil_id.split("-")[0]
        inbox = self.root / "education" / "inbox"
        for source in sorted(inbox.glob(f"pupils_{estab}_[0-9]*.xml")):
            tree = etree.parse(str(source))
            pupil = next(iter(tree.xpath("/PupilExport/Pupil[PupilId=$id]", id=pupil_id)), None)
            if pupil is None:
                continue
            line1, town, pc = self._address()
            address = pupil.find("Address")
            for old in list(address):
                address.remove(old)
            for tag, text in (("AddressLine", line1), ("AddressLine", town), ("Postcode", pc)):
                etree.SubElement(address, tag).text = text
            root = tree.getroot()
            sequence = len(list(inbox.glob(f"pupils_{estab}_upd*.xml"))) + 1
            export = etree.Element("PupilExport", dict(root.attrib, ExportDate=self.now.date().isoformat(),
                                                       Sequence=f"upd{sequence}"))
            export.append(pupil)
            target = inbox / f"pupils_{estab}_upd{sequence:04d}.xml"
            tmp = target.with_suffix(".part")
            tmp.write_bytes(etree.tostring(export, xml_declaration=True, encoding="UTF-8", pretty_print=True))
            tmp.replace(target)  # appear whole in the drop folder, never half-written
            return self._mutation("education", "pupils", pupil_id, person_id, "pupil_moved",
                                  file=f"inbox/{target.name}", line1=line1, town=town, postcode=pc)
        return None

    def _yj_stamp(self) -> str:
        return self.now.strftime("%Y-%m-%dT%H:%M:%SZ")

    def young_person_updated(self) -> Mutation | None:
        picked = self.truth.pick(self.rng, "youth_justice", "young-people")
        if not picked:
            return None
        yp_id, person_id = picked
        line1, town, pc = self._address()
        with self._sqlite("youth_justice") as db:
            db.execute("UPDATE young_people SET address_lines = ?, postcode = ?, updated_at = ?, version = version + 1 "
                       "WHERE id = ?", (json.dumps([line1, town]), pc, self._yj_stamp(), yp_id))
        return self._mutation("youth_justice", "young-people", yp_id, person_id, "young_person_updated",
                              line1=line1, town=town, postcode=pc)

    def order_added(self) -> Mutation | None:
        picked = self.truth.pick(self.rng, "youth_justice", "young-people")
        if not picked:
            return None
        yp_id, person_id = picked
        kind = self.rng.choice(("YC", "YCC", "RO", "YRO"))
        with self._sqlite("youth_justice") as db:
            last = db.execute("SELECT MAX(CAST(SUBSTR(id, 4) AS INTEGER)) FROM orders").fetchone()[0] or 0
            order_id = f"ORD{last + 1:06d}"
            db.execute("INSERT INTO orders (id, young_person_id, type, start_date, end_date, status, officer,"
                       " updated_at, version) VALUES (?, ?, ?, ?, NULL, 'active', ?, ?, 1)",
                       (order_id, yp_id, kind, self.now.date().isoformat(), "J. Smith", self._yj_stamp()))
        self.truth.add([("youth_justice", "orders", order_id, person_id, "involvement", "")])
        return self._mutation("youth_justice", "orders", order_id, person_id, "order_added", type=kind)


def mutate(estate_dir: str | Path, changes: int, seed: int, kinds: tuple[str, ...] | None = None) -> list[Mutation]:
    """Apply `changes` realistic edits to the estate's sources in place (optionally only of `kinds`);
    returns them and appends each to `mutations.jsonl`."""
    root = Path(estate_dir)
    rng = random.Random(seed)
    mutator = _Mutator(root, rng)
    offered = [(k, w) for k, w in CHANGES if kinds is None or k in kinds]
    if not offered:
        raise ValueError(f"no such change among {', '.join(k for k, _ in CHANGES)}: {kinds}")
    done: list[Mutation] = []
    try:
        attempts = 0
        while len(done) < changes and attempts < changes * 10:
            attempts += 1
            kind = rng.choices([k for k, _ in offered], [w for _, w in offered])[0]
            mutation = getattr(mutator, kind)()
            if mutation:
                done.append(mutation)
    finally:
        mutator.truth.close()
    with (root / "mutations.jsonl").open("a", encoding="utf-8") as f:
        for m in done:
            f.write(json.dumps(m.as_dict(), sort_keys=True) + "\n")
    return done
