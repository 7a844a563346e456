"""`hub routing …`: run the routing worker, list routes, deliveries and alerts."""

from __future__ import annotations

import json
import signal
import threading

import click

from hub.cli.context import get_hub
from hub.routing_worker import drain, list_alerts, list_deliveries


@click.group("routing")
def routing() -> None:
    """Routing rules, deliveries to legacy systems and alerts."""


@routing.command("run")
@click.option("--idle-exit", type=float, default=None, help="stop once idle this many seconds (default: forever)")
@click.pass_context
def run(ctx: click.Context, idle_exit: float | None) -> None:
    """Consume the routing queue: routes, alerts and write-back to legacy systems."""
    hub = get_hub(ctx)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    n = drain(hub.bus, hub.relay, hub.extras["routing_worker"], idle_timeout_s=idle_exit or 1.0,
              should_stop=stop.is_set, forever=idle_exit is None)
    click.echo(f"routing worker stopped after {n} message(s)")


@routing.command("rules")
@click.pass_context
def rules(ctx: click.Context) -> None:
    """The routes and alert rules in force (config/routing.toml)."""
    config = get_hub(ctx).extras["routing_config"]
    for r in config.route:
        click.echo(f"route {r.name}: {r.when.entity} from {', '.join(r.when.source_system)}"
                   f"{' when ' + ', '.join(r.when.changed) + ' changed' if r.when.changed else ''}"
                   f" → {', '.join(r.to)} ({r.transform.model_dump(exclude_defaults=True) or 'as is'})")
    for a in config.alert:
        click.echo(f"alert {a.name}: {a.min_services}+ services with one household within {a.window_days} days "
                   f"→ team allocated in {a.notify_category} (else {a.fallback_team})")


@routing.command("deliveries")
@click.option("--system", default=None)
@click.option("--status", default=None, type=click.Choice(["pending", "applied", "refused", "failing"]))
@click.option("--limit", default=50, show_default=True)
@click.pass_context
def deliveries(ctx: click.Context, system: str | None, status: str | None, limit: int) -> None:
    """Changes sent to legacy systems through their adapters, and what became of them."""
    for d in list_deliveries(get_hub(ctx).store, system=system, status=status, limit=limit):
        click.echo(f"#{d['id']} {d['updated_at']} {d['kind']} {d['operation']} {d['system']}/{d['entity']}/"
                   f"{d['source_id'] or '(new)'} [{d['status']}, {d['attempts']} attempt(s)] {d['detail'] or ''}")


@routing.command("alerts")
@click.option("--team", default=None)
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def alerts(ctx: click.Context, team: str | None, as_json: bool) -> None:
    """Alerts raised by the alert rules, newest first."""
    rows = list_alerts(get_hub(ctx).store, team=team)
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    for a in rows:
        click.echo(f"#{a['id']} {a['raised_at']} {a['rule']} → {a['team']}: {a['explanation']}")


def register(group: click.Group) -> None:
    group.add_command(routing)
