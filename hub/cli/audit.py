"""`hub audit verify` and `hub audit list`: check the hash chain, read the log."""

from __future__ import annotations

import datetime as dt

import click

from hub.audit import AuditFilter, list_entries, verify
from hub.cli.context import get_hub


@click.group("audit")
def audit() -> None:
    """The append-only, hash-chained audit log."""


@audit.command("verify")
@click.pass_context
def verify_(ctx: click.Context) -> None:
    """Exit 1, naming the entry, if any entry was edited, removed or reordered."""
    report = verify(get_hub(ctx).store)
    if not report.ok:
        click.echo(f"audit log FAILED after {report.checked} good entries: {report.problem}", err=True)
        ctx.exit(1)
    click.echo(f"audit log intact: {report.checked} entries")


@audit.command("list")
@click.option("--user", "actor", default=None)
@click.option("--person", "person_id", default=None)
@click.option("--action", default=None)
@click.option("--since", type=click.DateTime(["%Y-%m-%d"]), default=None)
@click.option("--until", type=click.DateTime(["%Y-%m-%d"]), default=None)
@click.option("--limit", default=50, show_default=True)
@click.pass_context
def list_(ctx: click.Context, actor: str | None, person_id: str | None, action: str | None,
          since: dt.datetime | None, until: dt.datetime | None, limit: int) -> None:
    page = list_entries(get_hub(ctx).store, AuditFilter(actor=actor, person_id=person_id, action=action,
                                                         since=since.date() if since else None,
                                                         until=until.date() if until else None, page_size=limit))
    click.echo(f"{page['total']} entries")
    for e in page["entries"]:
        who = f" person={e['person_id']}" if e["person_id"] else ""
        why = f" purpose={e['purpose']!r}" if e["purpose"] else ""
        click.echo(f"#{e['seq']} {e['at']} {e['actor']} {e['action']} {e['outcome']}{who}"
                   f"{' ' + e['target'] if e['target'] else ''}{why}")


def register(group: click.Group) -> None:
    group.add_command(audit)
