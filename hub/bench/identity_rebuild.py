"""`hub bench identity --rebuild-store N`: `rebuild` timed end to end on a SQLite store of N
synthetic person records, as an incremental load by the exact-key rule would have left it.

The store is filled in a child process with Core executemany (not through the worker: a
million records through the worker would take hours), so the parent's peak RSS is the
rebuild's own. Truth is kept in each record's provenance, to score the result.
"""

from __future__ import annotations

import datetime as dt
import multiprocessing
import resource
import time
from pathlib import Path
from typing import Any

from sqlalchemy import insert, select

from hub.bench.identity import exact_key_baseline
from hub.identity import synthetic
from hub.identity.repository import new_record_rows
from hub.store.engine import Store
from hub.store.tables.identity import IdentityBlockKeyRow, IdentityRecordRow
from hub.store.tables.records import PersonRow, SourceRecordRow
from identity_index import evaluation as ev
from identity_index.blocking import filed_keys, rules_named
from identity_index.features import features_from_canonical
from identity_index.model import Model, default_model
from identity_index.training import train

Row = tuple[str, Any, str, Any, Any]
CHUNK = 5000
RELATIVE_EVERY = 10  # one relationship record per this many person records


def fill_store(url: str, people: int, seed: int, model_path: Path, train_sample: int, with_keys: bool = True) -> int:
    """N people's synthetic records into a fresh store: source records, exact-key persons,
    identity records with block keys, and household relationships; the model trained on the
    first `train_sample` records is written to `model_path`. Without `with_keys` no block key is
    stored (a faster fill; the rebuild then writes every key). Returns records written."""
    store = Store(url)
    store.migrate()
    records = list(synthetic.people(people, seed=seed))
    feats = [features_from_canonical(r.ref, r.person) for r in records]
    sample = feats[:train_sample]
    model = train(sample, default_model(), seed=seed, max_u_pairs=min(200_000, 20 * len(sample)))
    model.save(model_path)
    rules = rules_named(model.blocking_rules)
    clusters = exact_key_baseline(feats)
    pid_of = {root: f"P{i:012d}" for i, root in enumerate(sorted(set(clusters.values())))}
    now = dt.datetime.now(dt.UTC)
    with store.transaction() as s:
        for start in range(0, len(records), CHUNK):
            part = range(start, min(start + CHUNK, len(records)))
            s.execute(insert(SourceRecordRow), [_source_row(records[i], pid_of[clusters[records[i].ref]], now)
                                                for i in part])
            index_rows, keys = new_record_rows([(feats[i], pid_of[clusters[feats[i].ref]],
                                                 filed_keys(feats[i], rules) if with_keys else [], False) for i in part],
                                               now)
            s.execute(insert(IdentityRecordRow), index_rows)
            if keys:
                s.execute(insert(IdentityBlockKeyRow), keys)
        first = {pid: feats[i] for i in reversed(range(len(feats))) for pid in (pid_of[clusters[feats[i].ref]],)}
        s.execute(insert(PersonRow), [{"id": pid, "version": 1, "golden": {}, "display_name": f"{f.given} {f.family}",
                                       "family_key": f.family, "given_key": f.given,
                                       "birth_date": f.dob.isoformat() if f.dob else None, "postcode": f.postcode,
                                       "created_at": now, "updated_at": now} for pid, f in first.items()])
        s.execute(insert(SourceRecordRow), _relationship_rows(records, now))
    store.dispose()
    return len(records)


def _source_row(r: synthetic.SyntheticRecord, person_id: str, now: dt.datetime) -> dict[str, Any]:
    system, _entity, source_id = r.ref.split("/")
    return {"ref_key": r.ref, "system": system, "entity": "person", "source_id": source_id,
            "content_hash": r.ref, "version": 1, "observed_at": now, "raw": {}, "canonical": r.person,
            "provenance": {"adapter": "bench", "location": "synthetic", "truth": r.truth},
            "person_id": person_id, "deleted": False, "updated_at": now}


def _relationship_rows(records: list[synthetic.SyntheticRecord], now: dt.datetime) -> list[dict[str, Any]]:
    """A parent for every tenth record: the record after it in the stream (another true person)."""
    rows = []
    for i in range(0, len(records) - 1, RELATIVE_EVERY):
        child, parent = records[i], records[i + 1]
        if child.truth == parent.truth:
            continue
        (cs, _e, cid), (ps, _e2, pid) = child.ref.split("/"), parent.ref.split("/")
        canonical = {"subject": {"system": cs, "entity": "person", "source_id": cid},
                     "related": {"system": ps, "entity": "person", "source_id": pid}, "kind": "parent"}
        rows.append({"ref_key": f"{cs}/relationship/{cid}-{pid}", "system": cs, "entity": "relationship",
                     "source_id": f"{cid}-{pid}", "content_hash": cid, "version": 1, "observed_at": now,
                     "raw": canonical, "canonical": canonical, "provenance": {"adapter": "bench"},
                     "person_id": None, "deleted": False, "updated_at": now})
    return rows


def _fill_child(url: str, people: int, seed: int, model_path: Path, train_sample: int, with_keys: bool,
                out: Any) -> None:
    started = time.perf_counter()
    try:
        out.put((fill_store(url, people, seed, model_path, train_sample, with_keys), time.perf_counter() - started))
    except BaseException as exc:  # the parent waits on the queue: tell it, don't hang it
        out.put((None, repr(exc)))
        raise


def rebuild_figures(people: int, seed: int, train_sample: int, workdir: str | Path,
                    profile: Path | None = None, with_keys: bool = True) -> list[Row]:
    """Fill a store (child process), then time `rebuild` here: wall, CPU, peak RSS, records/s,
    merges/splits, and pairwise precision/recall of the persons against the truth."""
    from hub.identity.runs import rebuild

    workdir = Path(workdir)
    db = workdir / f"rebuild-{people}-{seed}.db"
    db.unlink(missing_ok=True)
    url = f"sqlite:///{db}"
    model_path = workdir / "rebuild-model.json"
    queue: Any = multiprocessing.get_context("fork").Queue()
    child = multiprocessing.get_context("fork").Process(target=_fill_child,
                                                          args=(url, people, seed, model_path, train_sample, with_keys, queue))
    child.start()
    written, fill_s = queue.get()
    child.join()
    if written is None:
        raise RuntimeError(f"filling the bench store failed: {fill_s}")
    model = Model.load(model_path)
    rows: list[Row] = [("rebuild store: person records", written, "", "",
                        f"filled in {fill_s:.0f}s" + ("" if with_keys else ", no block keys stored"))]
    store = Store(url)
    truth, before = _persons(store)
    cpu0, started = time.process_time(), time.perf_counter()
    if profile:
        import cProfile

        profiler = cProfile.Profile()
        report = profiler.runcall(rebuild, store, model)
        profiler.dump_stats(profile)
    else:
        report = rebuild(store, model)
    wall, cpu = time.perf_counter() - started, time.process_time() - cpu0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    _truth, after = _persons(store)
    base, ours = ev.pairwise(before, truth), ev.pairwise(after, truth)
    rows += [("rebuild: wall", wall, "s", "", f"CPU {cpu:.1f}s"),
             ("rebuild: records/s", report.records / wall, "records/s", "", ""),
             ("rebuild: peak RSS (this process)", peak, "MB", "", ""),
             ("rebuild: merges / splits / records moved",
              f"{len(report.merges)} / {len(report.splits)} / {report.records_moved}", "", "", ""),
             ("rebuild: persons before -> after", f"{report.persons_before} -> {report.persons_after}", "", "", ""),
             ("rebuild: reviews added", report.reviews_added, "", "", ""),
             ("pairwise precision (after rebuild)", ours.precision, "", base.precision, "baseline: exact-key load"),
             ("pairwise recall (after rebuild)", ours.recall, "", base.recall, ""),
             ("pairwise F1 (after rebuild)", ours.f1, "", base.f1, "")]
    store.dispose()
    for suffix in ("", "-wal", "-shm", "-journal"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    model_path.unlink(missing_ok=True)
    return rows


def _persons(store: Store) -> tuple[dict[str, str], dict[str, str]]:
    truth, person = {}, {}
    with store.transaction() as s:
        for ref, pid, prov in s.execute(select(SourceRecordRow.ref_key, SourceRecordRow.person_id,
                                               SourceRecordRow.provenance)
                                        .where(SourceRecordRow.entity == "person")):
            truth[ref], person[ref] = prov["truth"], pid
    return truth, person

