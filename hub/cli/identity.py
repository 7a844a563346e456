"""`hub identity …`: train, evaluate, rebuild, the review queue, unlink, explain, link-file."""

from __future__ import annotations

import json
import time
from pathlib import Path

import click

from hub.bench.table import render
from hub.cli.context import get_hub
from hub.identity import review as rv
from hub.identity.files import ColumnMapError, link_files, parse_columns
from hub.identity.model_file import load_model, model_path
from hub.identity.runs import (
    corroborate_reviews,
    evaluate_store,
    read_truth,
    rebuild,
    train_from_store,
)
from hub.identity.stewardship import StewardshipError, unlink_record
from identity_index.model import ModelFileError

MODEL_OPTION = click.option("--model", "model_file", default=None,
                            help="model file (default: HUB_IDENTITY_MODEL or var/identity/model.json)")


def _model(model_file: str | None):
    try:
        return load_model(model_file)
    except ModelFileError as exc:
        raise click.ClickException(str(exc)) from exc


@click.group("identity")
def identity() -> None:
    """The master identity index: who is who across every legacy system."""


@identity.command("train")
@click.option("--out", default=None, help="where to write the model (default: the model file)")
@click.option("--seed", type=int, default=1, show_default=True)
@MODEL_OPTION
@click.pass_context
def train_cmd(ctx: click.Context, out: str | None, seed: int, model_file: str | None) -> None:
    """Estimate u from random pairs and m by EM on the store's person records; write the model."""
    hub = get_hub(ctx)
    target = Path(out) if out else model_path(model_file)
    started = time.perf_counter()
    try:
        model = train_from_store(hub.store, _model(model_file), target, seed=seed)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"model {model.version} written to {target} in {time.perf_counter() - started:.1f}s")
    click.echo(json.dumps(model.training, indent=1))
    click.echo("restart the workers to link with it; `hub identity rebuild` re-clusters existing records")


@identity.command("evaluate")
@click.option("--estate", "estate_dir", required=True, type=click.Path(exists=True, file_okay=False),
              help="sample estate directory holding truth.csv")
@MODEL_OPTION
@click.pass_context
def evaluate_cmd(ctx: click.Context, estate_dir: str, model_file: str | None) -> None:
    """Precision, recall and F1 of the store's links against the estate's ground truth."""
    hub = get_hub(ctx)
    result = evaluate_store(hub.store, read_truth(estate_dir), _model(model_file))
    if not result.records:
        raise click.ClickException("no person record of that estate is in the store: ingest it first")
    click.echo(render(["measure", "value"], result.rows()))


@identity.command("rebuild")
@MODEL_OPTION
@click.option("--refeature", is_flag=True,
              help="recompute every record's features from its canonical form (after the feature code changed)")
@click.pass_context
def rebuild_cmd(ctx: click.Context, model_file: str | None, refeature: bool) -> None:
    """Re-cluster every person record (after an initial load or a retrained model)."""
    report = rebuild(get_hub(ctx).store, _model(model_file), refeature=refeature)
    click.echo(render(["measure", "value"], [
        ("records", report.records), ("persons before", report.persons_before),
        ("persons after", report.persons_after), ("merges", len(report.merges)), ("splits", len(report.splits)),
        ("records moved", report.records_moved), ("review pairs added", report.reviews_added),
        ("pairs compared", report.pairs_compared), ("seconds", report.seconds)]))
    for m in report.merges[:20]:
        click.echo(f"merged into {m['person_id']}: {', '.join(m['from'])}")
    for s in report.splits[:20]:
        click.echo(f"split {s['person_id']} into {', '.join(s['into'])}")


@identity.command("corroborate")
@MODEL_OPTION
@click.pass_context
def corroborate_cmd(ctx: click.Context, model_file: str | None) -> None:
    """Link open review pairs settled by household evidence (same name, relatives of one person)."""
    hub = get_hub(ctx)
    n = corroborate_reviews(hub.store, _model(model_file))
    hub.relay.relay_all()
    click.echo(f"{n} review pair(s) linked by shared relatives")


@identity.group("review")
def review() -> None:
    """The clerical review queue of possible matches."""


@review.command("list")
@click.option("--status", default="open", show_default=True, type=click.Choice([*rv.STATUSES, "all"]))
@click.option("--system", default=None)
@click.option("--limit", type=int, default=50, show_default=True)
@click.pass_context
def review_list(ctx: click.Context, status: str, system: str | None, limit: int) -> None:
    page = rv.list_reviews(get_hub(ctx).store, status=None if status == "all" else status, system=system,
                           page_size=limit)
    click.echo(f"{page.total} pair(s) {status}")
    if page.items:
        click.echo(render(["id", "probability", "record a", "record b", "status"], [
            (i["id"], i["probability"], i["ref_a"], i["ref_b"], i["status"]) for i in page.items]))


@review.command("show")
@click.argument("review_id", type=int)
@click.pass_context
def review_show(ctx: click.Context, review_id: int) -> None:
    try:
        r = rv.get_review(get_hub(ctx).store, review_id)
    except rv.ReviewNotFound as exc:
        raise click.ClickException(f"no review pair {review_id}") from exc
    click.echo(f"#{r['id']} {r['status']} p={r['probability']:.4f} model {r['model_version']}")
    click.echo(render(["field", "a", "b", "level", "weight"], [
        (f["comparison"], _cells(f["a"]), _cells(f["b"]), f["level"], f["weight"]) for f in r["fields"]]))


def _cells(values: dict) -> str:
    return " / ".join(str(v) for v in values.values() if v not in (None, "", []))


@review.command("decide")
@click.argument("review_id", type=int)
@click.option("--decision", required=True, type=click.Choice([d.value for d in rv.ReviewDecision]))
@click.option("--reason", required=True)
@click.option("--user", required=True, help="the steward making the decision")
@MODEL_OPTION
@click.pass_context
def review_decide(ctx: click.Context, review_id: int, decision: str, reason: str, user: str,
                  model_file: str | None) -> None:
    try:
        r = rv.decide(get_hub(ctx).store, review_id, decision, user=user, reason=reason, model=_model(model_file))
    except rv.ReviewNotFound as exc:
        raise click.ClickException(f"no review pair {review_id}") from exc
    except rv.ReviewRejected as exc:
        raise click.ClickException(str(exc)) from exc
    get_hub(ctx).relay.relay_all()
    click.echo(f"#{review_id}: {r['status']} (a → {r['person_a']}, b → {r['person_b']})")


@identity.command("unlink")
@click.argument("ref")
@click.option("--reason", required=True)
@click.option("--user", required=True)
@MODEL_OPTION
@click.pass_context
def unlink_cmd(ctx: click.Context, ref: str, reason: str, user: str, model_file: str | None) -> None:
    """Take one record (system/person/id) out of its person; automation will not put it back."""
    hub = get_hub(ctx)
    try:
        with hub.store.transaction() as s:
            pid = unlink_record(s, ref, actor=user, reason=reason, model=_model(model_file))
    except StewardshipError as exc:
        raise click.ClickException(str(exc)) from exc
    hub.relay.relay_all()
    click.echo(f"{ref} is now person {pid}")


@identity.command("explain")
@click.argument("ref")
@click.pass_context
def explain_cmd(ctx: click.Context, ref: str) -> None:
    """Why a record belongs to its person: every link decision, newest first, field by field."""
    history = rv.link_history(get_hub(ctx).store, ref)
    if not history:
        raise click.ClickException(f"no link recorded for {ref}")
    click.echo(json.dumps(history, indent=1, default=str))


@identity.command("audit")
@click.option("--limit", type=int, default=50, show_default=True)
@click.pass_context
def audit_cmd(ctx: click.Context, limit: int) -> None:
    """The newest identity decisions (steward decisions, merges, splits, unlinks, rebuilds)."""
    for e in rv.audit_entries(get_hub(ctx).store, limit=limit):
        click.echo(f"#{e['id']} {e['at']} {e['actor']} {e['action']} {json.dumps(e['detail'], default=str)}")


@identity.command("link-file")
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False))
@click.option("--columns", required=True, help="FIELD=COLUMN,… with FIELD in id,given,family,dob,sex,postcode,nhs,upn")
@click.option("--out", required=True, type=click.Path(dir_okay=False))
@MODEL_OPTION
def link_file_cmd(files: tuple[str, ...], columns: str, out: str, model_file: str | None) -> None:
    """Deduplicate one CSV file or link two with the same engine; write file,id,cluster rows."""
    if len(files) > 2:
        raise click.ClickException("give one file (deduplicate) or two (link)")
    try:
        result = link_files([Path(f) for f in files], parse_columns(columns), _model(model_file), Path(out))
    except ColumnMapError as exc:
        raise click.ClickException(str(exc)) from exc
    clusters = len(set(result.clusters.cluster_of.values()))
    click.echo(f"{len(result.refs)} records → {clusters} clusters; {result.pairs_compared} pairs compared; "
               f"{len(result.clusters.reviews)} pairs to review; written to {out}")


def register(group: click.Group) -> None:
    group.add_command(identity)
