"""`hub bench identity`: linkage quality and speed of the master identity index, with
the foundation's exact-key linker as the same-run baseline.

On synthetic messy people (`hub.identity.synthetic`, with ground truth): blocking
(share of pairs compared, pairs completeness), training, batch clustering
(`rebuild`'s engine) and incremental placement records/s (in memory, after
`--indexed` records are already indexed), pairwise precision/recall/F1 and B-cubed,
and incremental linking through the real worker and store. With `--estate DIR`, the
sample estate is generated (if absent), ingested through adapters → bus → worker, and
evaluated against its `truth.csv` after incremental linking and after train + rebuild.
"""

from __future__ import annotations

import datetime as dt
import itertools
import resource
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import click
import numpy as np

from canonical import Provenance, SourceRecord, SourceRef, content_hash
from canonical.codes import EntityKind
from canonical.messages import Envelope, MessageType
from hub.bench.environment import environment
from hub.bench.table import render
from hub.identity import synthetic
from identity_index import evaluation as ev
from identity_index.blocking import candidate_pair_array, count_true_pairs, rules_named
from identity_index.engine import MAX_BLOCK, IncrementalIndex, link_batch
from identity_index.features import PersonFeatures, features_from_canonical
from identity_index.model import Model, default_model
from identity_index.training import train

Row = tuple[str, Any, str, Any, Any]


def exact_key_baseline(feats: Sequence[PersonFeatures]) -> dict[str, str]:
    """The foundation's rule: same NHS number, else same family, given name and birth date."""
    parent: dict[str, str] = {f.ref: f.ref for f in feats}

    def find(x: str) -> str:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    first: dict[tuple, str] = {}
    for f in feats:
        keys = [("nhs", f.nhs)] if f.nhs else []
        if f.family and f.given and f.dob:
            keys.append(("name", f.family, f.given, f.dob))
        for key in keys:
            other = first.setdefault(key, f.ref)
            parent[find(f.ref)] = find(other)
    return {r: find(r) for r in parent}


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def synthetic_figures(people: int, seed: int, indexed: int, store_records: int, place: int = 20_000,
                      train_sample: int = 200_000) -> list[Row]:
    rows: list[Row] = []
    # streamed: a million canonical records as dicts would not fit beside the engine
    records: list[synthetic.SyntheticRecord] = []
    truth: dict[str, str] = {}
    feats: list[PersonFeatures] = []
    for r in synthetic.people(people, seed=seed):
        truth[r.ref] = r.truth
        feats.append(features_from_canonical(r.ref, r.person))
        if len(records) < store_records:
            records.append(r)
    rows.append(("person records", len(feats), "", "", ""))

    started = time.perf_counter()
    sample = feats[:train_sample]
    model = train(sample, default_model(), seed=seed, max_u_pairs=min(200_000, 20 * len(sample)))
    rows.append((f"train (EM, u, TF) on {len(sample):,} records", time.perf_counter() - started, "s", "", ""))

    started = time.perf_counter()
    left, right = candidate_pair_array(feats, rules_named(model.blocking_rules), max_block=MAX_BLOCK)
    blocking_s = time.perf_counter() - started
    entity = np.unique([truth[f.ref] for f in feats], return_inverse=True)[1]
    total = len(feats) * (len(feats) - 1) // 2
    rows.append(("share of pairs compared", len(left) / total if total else 0.0, "",
                 1.0, f"{len(left):,} pairs in {blocking_s:.1f}s"))
    true_pairs = count_true_pairs(truth[f.ref] for f in feats)
    kept = int(np.count_nonzero(entity[left] == entity[right]))
    rows.append(("pairs completeness", kept / true_pairs if true_pairs else 1.0, "", "", ""))
    del left, right

    started = time.perf_counter()
    base_clusters = exact_key_baseline(feats)
    base_s = time.perf_counter() - started
    started = time.perf_counter()
    batch = link_batch(feats, model)
    batch_s = time.perf_counter() - started
    rows.append(("batch linking (rebuild's engine)", len(feats) / batch_s, "records/s", len(feats) / base_s,
                 f"{base_s / batch_s:.3f} (wall {batch_s:.1f}s)"))
    predicted = {r: str(c) for r, c in batch.clusters.cluster_of.items()}
    _quality(rows, "batch", predicted, truth, base_clusters)
    reviews = ev.review_pairs_truth([(s.ref_a, s.ref_b) for s in batch.clusters.reviews], truth)
    rows.append(("review pairs (batch): total / truly same", f"{reviews[0]} / {reviews[1]}", "", "", ""))

    rows.append(("peak RSS after batch", _peak_rss_mb(), "MB", "", ""))
    del batch

    index = IncrementalIndex(model)
    if indexed:
        started = time.perf_counter()
        for f in _prefill(indexed, seed + 1):
            index.load(f, f"X{f.ref}")
        rows.append(("pre-indexed records (load)", indexed, f"in {time.perf_counter() - started:.1f}s", "", ""))
    placed = feats[:place]
    compared = 0
    started = time.perf_counter()
    for f in placed:
        compared += index.place(f).compared
    incr_s = time.perf_counter() - started
    rows.append((f"incremental placement (in memory, one core), {len(placed):,} records", len(placed) / incr_s,
                 "records/s", "", f"{compared / max(1, len(placed)):.0f} candidates/record"))
    placed_truth = {f.ref: truth[f.ref] for f in placed}
    _quality(rows, "incremental", {r: p for r, p in index.person_of.items() if r in placed_truth}, placed_truth, None)
    if store_records:
        rows += _through_the_worker(records[:store_records], model)
    rows.append(("peak RSS", _peak_rss_mb(), "MB", "", ""))
    return rows


def _prefill(count: int, seed: int) -> Iterator[PersonFeatures]:
    for r in itertools.islice(synthetic.people(count, seed=seed), count):
        yield features_from_canonical("pre/" + r.ref, r.person)


def _quality(rows: list[Row], label: str, predicted: dict[str, str], truth: dict[str, str],
             baseline: dict[str, str] | None) -> None:
    pw = ev.pairwise(predicted, truth)
    b3 = ev.b_cubed(predicted, truth)
    base = ev.pairwise(baseline, truth) if baseline else None
    base_b3 = ev.b_cubed(baseline, truth) if baseline else None
    rows.append((f"pairwise precision ({label})", pw.precision, "", base.precision if base else "", ""))
    rows.append((f"pairwise recall ({label})", pw.recall, "", base.recall if base else "", ""))
    rows.append((f"pairwise F1 ({label})", pw.f1, "", base.f1 if base else "", ""))
    rows.append((f"B-cubed F1 ({label})", b3.f1, "", base_b3.f1 if base_b3 else "", ""))


def _through_the_worker(records: Sequence[synthetic.SyntheticRecord], model: Model) -> list[Row]:
    from hub.identity.linker import IdentityLinker
    from hub.persons import DeterministicLinker
    from hub.store.engine import Store
    from hub.worker import RecordsWorker

    now = dt.datetime.now(dt.UTC)
    batch = [Envelope(type=MessageType.RECORD_UPSERTED, source_system=r.ref.split("/")[0], payload=SourceRecord(
        ref=SourceRef(system=r.ref.split("/")[0], entity=EntityKind.PERSON, source_id=r.ref.split("/")[2]),
        content_hash=content_hash(r.person), observed_at=now, version=1,
        provenance=Provenance(adapter="bench", location="synthetic", extracted_at=now), raw=r.person,
        canonical=r.person).model_dump(mode="json")) for r in records]
    figures = {}
    with tempfile.TemporaryDirectory() as tmp:
        for label, linker in (("identity index", IdentityLinker(model, publish_events=True)),
                              ("baseline exact-key", DeterministicLinker())):
            store = Store(f"sqlite:///{tmp}/{label.split()[0]}.db")
            store.migrate()
            worker = RecordsWorker(store, linker=linker)
            started = time.perf_counter()
            for i in range(0, len(batch), 200):
                worker.handle(batch[i:i + 200])
            figures[label] = len(batch) / (time.perf_counter() - started)
            store.dispose()
    ours, base = figures["identity index"], figures["baseline exact-key"]
    return [("incremental through worker + SQLite store", ours, "records/s", base, f"{ours / base:.3f}")]


def estate_figures(estate: Path, people: int, seed: int, explain_dir: Path | None = None) -> list[Row]:
    """Generate (if absent), ingest through the hub, evaluate incremental, train, rebuild, evaluate;
    with `explain_dir`, the missed true pairs by cause (and the inputs, to replay offline)."""
    from hub.bootstrap import bootstrap
    from hub.config import HubConfig
    from hub.estate import generate
    from hub.estate.youth_justice_api import serve_youth_justice_in_thread
    from hub.identity.runs import (
        corroborate_reviews,
        evaluate_store,
        read_truth,
        rebuild,
        train_from_store,
    )
    from hub.worker import run_worker

    rows: list[Row] = []
    if not (estate / "truth.csv").exists():
        generate(estate, people=people, seed=seed)
    truth = read_truth(estate)
    systems_dir = Path(__file__).resolve().parents[2] / "systems"
    server = serve_youth_justice_in_thread(estate, token="bench-token")
    with tempfile.TemporaryDirectory() as tmp, environment(HUB_ESTATE_DIR=str(estate), YJ_API_TOKEN="bench-token",
                                                   YJ_API_URL=f"http://127.0.0.1:{server.port}",
                                                   HUB_IDENTITY_MODEL=f"{tmp}/model.json"):
        config = HubConfig.model_validate({"store": {"url": f"sqlite:///{tmp}/hub.db"},
                                           "systems": {"dir": str(systems_dir), "estate_dir": str(estate)}})
        hub = bootstrap(config)
        try:
            for name in hub.systems.names():
                hub.ingest.run(name, trigger="bench")
            started = time.perf_counter()
            processed = run_worker(hub.bus, hub.worker, batch_size=200, idle_timeout_s=1.0)
            rows.append(("estate: messages through the worker", processed / (time.perf_counter() - started),
                         "msg/s", "", ""))
            model = hub.worker.linker.model
            for label in ("incremental", "incremental + corroborate", "train + rebuild"):
                if label == "incremental + corroborate":
                    corroborate_reviews(hub.store, model)
                elif label == "train + rebuild":
                    model = train_from_store(hub.store, model, f"{tmp}/model.json", seed=seed)
                    report = rebuild(hub.store, model)
                    rows.append(("estate: rebuild", report.records / report.seconds, "records/s", "",
                                 f"{report.seconds:.1f}s"))
                e = evaluate_store(hub.store, truth, model)
                rows += [(f"estate ({label}): {name}", value, "", "", "") for name, value in e.rows()]
            if explain_dir is not None:
                rows += explain_store_misses(hub.store, model, truth, explain_dir)
        finally:
            hub.close()
            server.stop()
    return rows


def explain_store_misses(store: Any, model: Model, truth: dict[str, str], out: Path) -> list[Row]:
    """Missed true pairs of the store's persons by cause; writes misses.jsonl, and features.jsonl,
    relationships.jsonl and model.json so the batch engine can be replayed without the hub."""
    import json

    from hub.identity.runs import live_person_records, relationships
    from identity_index.diagnosis import cause_counts, explain_misses
    from identity_index.scoring import Scorer

    with store.transaction() as s:
        rows = list(live_person_records(s))
        rels = relationships(s)
    feats = [features_from_canonical(ref, c) for ref, _pid, c in rows]
    batch = link_batch(feats, model, relationships=rels)
    predicted = {ref: pid for ref, pid, _c in rows if pid}
    left, right = candidate_pair_array(feats, rules_named(model.blocking_rules), max_block=MAX_BLOCK)
    blocked = {frozenset((feats[i].ref, feats[j].ref)) for i, j in zip(left.tolist(), right.tolist(), strict=True)}
    misses = explain_misses(feats, predicted, truth, batch.scores, Scorer(model), blocked)
    out.mkdir(parents=True, exist_ok=True)
    by_ref = {f.ref: f for f in feats}
    with (out / "features.jsonl").open("w") as fh:
        for f in feats:
            fh.write(json.dumps({**f.to_json(), "truth": truth.get(f.ref)}) + "\n")
    (out / "relationships.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rels))
    model.save(out / "model.json")
    with (out / "misses.jsonl").open("w") as fh:
        for m in misses:
            fh.write(json.dumps({"cause": m.cause, "a": by_ref[m.ref_a].to_json(), "b": by_ref[m.ref_b].to_json(),
                                 "probability": m.score.probability, "levels": m.score.levels}) + "\n")
    return [(f"missed true pairs: {cause}", n, "pairs", "", "") for cause, n in sorted(cause_counts(misses).items())]


@click.command("identity")
@click.option("--people", type=click.IntRange(min=10), default=5_000, show_default=True,
              help="synthetic true people (each in 1-4 systems)")
@click.option("--seed", type=int, default=1, show_default=True)
@click.option("--indexed", type=click.IntRange(min=0), default=0, show_default=True,
              help="records already in the in-memory index before incremental placement is timed")
@click.option("--store-records", type=click.IntRange(min=0), default=2_000, show_default=True,
              help="records linked through the real worker and a SQLite store (0: skip)")
@click.option("--estate", "estate_dir", type=click.Path(file_okay=False), default=None,
              help="also evaluate on a sample estate (generated there with --people if absent)")
@click.option("--place", type=click.IntRange(min=1), default=20_000, show_default=True,
              help="records placed one by one to time incremental matching (the first N)")
@click.option("--train-sample", type=click.IntRange(min=2), default=200_000, show_default=True,
              help="records the synthetic model is trained on (the first N)")
@click.option("--explain-misses", "explain_dir", type=click.Path(file_okay=False), default=None,
              help="with --estate: write the missed true pairs by cause (and the inputs) to this directory")
@click.option("--rebuild-store", "rebuild_people", type=click.IntRange(min=0), default=0,
              help="only time `hub identity rebuild` on a SQLite store of this many synthetic people's records")
@click.option("--workdir", type=click.Path(file_okay=False), default=None,
              help="with --rebuild-store: where the bench store is written (a temporary directory by default)")
@click.option("--no-stored-keys", is_flag=True,
              help="with --rebuild-store: fill the store without block keys (faster; the rebuild writes them all)")
@click.option("--profile", "profile_path", type=click.Path(dir_okay=False), default=None,
              help="with --rebuild-store: write a cProfile of the rebuild here")
def command(people: int, seed: int, indexed: int, store_records: int, place: int, train_sample: int,
            estate_dir: str | None, explain_dir: str | None, rebuild_people: int, workdir: str | None,
            profile_path: str | None, no_stored_keys: bool) -> None:
    """Identity index: precision, recall, F1, B-cubed, pairs compared, records/s, peak memory."""
    if rebuild_people:
        from hub.bench.identity_rebuild import rebuild_figures

        if workdir:
            Path(workdir).mkdir(parents=True, exist_ok=True)  # a work directory that does not exist yet is made
        with tempfile.TemporaryDirectory(dir=workdir) as tmp:
            rows = rebuild_figures(rebuild_people, seed, train_sample, tmp, Path(profile_path) if profile_path else None,
                                   with_keys=not no_stored_keys)
        click.echo(render(["figure", "value", "unit", "baseline (exact keys)", "ratio / note"], rows))
        return
    rows = synthetic_figures(people, seed, indexed, store_records, place, train_sample)
    if estate_dir:
        rows += estate_figures(Path(estate_dir), people, seed, Path(explain_dir) if explain_dir else None)
    click.echo(render(["figure", "value", "unit", "baseline (exact keys)", "ratio / note"], rows))
