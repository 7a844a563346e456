"""`hub messages …`: browse the message journal, follow a message, list and replay dead letters."""

from __future__ import annotations

import datetime as dt
import json

import click

from hub.bench.table import render
from hub.bus.figures import bus_figures
from hub.cli.context import get_hub
from hub.services import messages as svc


@click.group("messages")
def messages() -> None:
    """The message journal, dead letters and replay."""


@messages.command("list")
@click.option("--type", "type_", help="message type, e.g. source.record.upserted")
@click.option("--system", help="source system")
@click.option("--status", type=click.Choice(svc.EVENTS), help="latest event of the message")
@click.option("--since", type=click.DateTime(), help="first seen at or after (UTC)")
@click.option("--until", type=click.DateTime(), help="first seen before (UTC)")
@click.option("--person", "person_id", help="hub person id: messages that carried its records")
@click.option("--ref", "ref_key", help="source record key system/entity/source_id")
@click.option("--page", type=int, default=1, show_default=True)
@click.option("--page-size", type=int, default=50, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="print JSON instead of a table")
@click.pass_context
def list_cmd(ctx: click.Context, type_: str | None, system: str | None, status: str | None,
             since: dt.datetime | None, until: dt.datetime | None, person_id: str | None, ref_key: str | None,
             page: int, page_size: int, as_json: bool) -> None:
    """Messages with their latest event, newest first."""
    q = svc.MessageQuery(type=type_, system=system, status=status, since=_utc(since), until=_utc(until),
                         person_id=person_id, ref_key=ref_key, page=page, page_size=page_size)
    result = svc.list_messages(get_hub(ctx).store, q)
    if as_json:
        click.echo(json.dumps({"results": result.results, "total": result.total, "page": result.page}, indent=1))
        return
    click.echo(render(["message", "type", "system", "record", "status", "last event"],
                      [[m["message_id"], m["type"], m["source_system"], m["ref_key"] or "", m["status"],
                        m["last_at"]] for m in result.results]))
    click.echo(f"{result.total} message(s); page {result.page}")


@messages.command("show")
@click.argument("message_id")
@click.pass_context
def show(ctx: click.Context, message_id: str) -> None:
    """One message's journey: every event in order."""
    try:
        journey = svc.message_journey(get_hub(ctx).store, message_id)
    except svc.MessageNotFound as exc:
        raise click.ClickException(f"no message {exc} in the journal") from exc
    click.echo(f"{journey['message_id']}  {journey['type']}  {journey['source_system']}  "
               f"{journey['ref_key'] or ''}  status={journey['status']}  attempts={journey['attempts']}")
    click.echo(render(["at", "+ms", "event", "queue", "detail"],
                      [[e["at"], e["after_ms"], e["event"], e["queue"] or "", _first_line(e["detail"])]
                       for e in journey["events"]]))


@messages.command("dead-letters")
@click.option("--queue", "queues", multiple=True, help="queue name (repeatable); default: every queue")
@click.option("--limit", type=int, default=100, show_default=True, help="per queue")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def dead_letters(ctx: click.Context, queues: tuple[str, ...], limit: int, as_json: bool) -> None:
    """Messages that failed every attempt, with their error."""
    found = svc.dead_letters(get_hub(ctx).bus, queues or svc.QUEUES, limit=limit)
    if as_json:
        click.echo(json.dumps(found, indent=1))
        return
    click.echo(render(["message", "queue", "type", "record", "attempts", "dead at", "error"],
                      [[d["message_id"], d["queue"], d["type"], d["ref_key"] or "", d["attempts"], d["dead_at"],
                        _first_line(d["error"], last=True)] for d in found]))
    click.echo(f"{len(found)} dead letter(s)")


@messages.command("replay")
@click.argument("message_ids", nargs=-1)
@click.option("--all", "replay_all", is_flag=True, help="replay every dead letter")
@click.option("--queue", "queues", multiple=True, help="queue name (repeatable); default: every queue")
@click.pass_context
def replay(ctx: click.Context, message_ids: tuple[str, ...], replay_all: bool, queues: tuple[str, ...]) -> None:
    """Send dead letters back to their queue after the cause is fixed."""
    if bool(message_ids) == replay_all:
        raise click.UsageError("name message ids, or give --all (not both)")
    result = svc.replay(get_hub(ctx).bus, None if replay_all else list(message_ids), queues or svc.QUEUES)
    click.echo(json.dumps(result))
    if result.get("not_found"):
        ctx.exit(1)


@messages.command("figures")
@click.pass_context
def figures(ctx: click.Context) -> None:
    """Queue depth, rates, consumers and the hub's processing latency."""
    hub = get_hub(ctx)
    data = bus_figures(hub.bus, hub.store)
    click.echo(render(["queue", "ready", "in flight", "dead", "consumers", "publish/s", "deliver/s", "rates from"],
                      [[q["queue"], q["ready"], q["in_flight"], q["dead"], q["consumers"],
                        _rate(q["publish_rate"]), _rate(q["deliver_rate"]), q["rates_from"]]
                       for q in data["queues"]]))
    lat = data["latency"]
    click.echo(f"processing latency over {lat['window_s']}s: {lat['processed']} message(s), "
               f"p50 {lat['p50_ms']} ms, p95 {lat['p95_ms']} ms, max {lat['max_ms']} ms")


def _utc(value: dt.datetime | None) -> dt.datetime | None:
    return value.replace(tzinfo=dt.UTC) if value and value.tzinfo is None else value


def _rate(value: float | None) -> str:
    return "" if value is None else f"{value:.1f}"


def _first_line(text: str | None, *, last: bool = False) -> str:
    lines = [line.strip() for line in (text or "").strip().splitlines() if line.strip()]
    if not lines:
        return ""
    return (lines[-1] if last else lines[0])[:120]


def register(group: click.Group) -> None:
    group.add_command(messages)
