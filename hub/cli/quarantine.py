"""`hub quarantine …`: list, re-run and accept quarantined records."""

from __future__ import annotations

import click

from hub.cli.context import get_hub
from hub.services import quarantine as q


@click.group("quarantine")
def quarantine() -> None:
    """Records that failed translation, kept with every reason."""


@quarantine.command("list")
@click.option("--system", default=None)
@click.option("--status", default="open", show_default=True)
@click.pass_context
def list_(ctx: click.Context, system: str | None, status: str) -> None:
    data = q.list_quarantine(get_hub(ctx).store, system=system, status=None if status == "all" else status,
                             page_size=1000)
    click.echo(f"{data['total']} {status} entr{'y' if data['total'] == 1 else 'ies'}")
    for e in data["entries"]:
        click.echo(f"#{e['id']} {e['system']} {e['entity']} {e['source_id'] or ''} [{e['status']}] {e['location']}")
        for reason in e["reasons"]:
            click.echo(f"    - {reason}")


@quarantine.command("rerun")
@click.argument("entry_ids", type=int, nargs=-1, required=True)
@click.pass_context
def rerun(ctx: click.Context, entry_ids: tuple[int, ...]) -> None:
    hub = get_hub(ctx)
    for entry_id in entry_ids:
        e = q.rerun(hub.store, hub.systems, entry_id)
        click.echo(f"#{entry_id}: {e['status']}" + ("" if e["status"] == "resolved" else f" {e['reasons']}"))
    hub.relay.relay_all()


@quarantine.command("accept")
@click.argument("entry_id", type=int)
@click.option("--reason", required=True)
@click.pass_context
def accept(ctx: click.Context, entry_id: int, reason: str) -> None:
    e = q.accept(get_hub(ctx).store, entry_id, reason)
    click.echo(f"#{entry_id}: {e['status']} ({e['resolution']})")


@quarantine.command("export")
@click.option("--system", default=None)
@click.option("--status", default="open", show_default=True, help="open, resolved, accepted, superseded or all")
@click.option("--out", "out_path", type=click.Path(dir_okay=False, writable=True), default=None,
              help="file to write (default: standard output)")
@click.pass_context
def export(ctx: click.Context, system: str | None, status: str, out_path: str | None) -> None:
    """Entries as CSV (formula-like legacy values neutralised)."""
    text = q.export_csv(get_hub(ctx).store, system=system, status=None if status == "all" else status)
    if out_path:
        with open(out_path, "w", encoding="utf-8", newline="") as fh:
            fh.write(text)
    else:
        click.echo(text, nl=False)


def register(group: click.Group) -> None:
    group.add_command(quarantine)
