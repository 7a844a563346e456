"""`hub systems …`: legacy systems' phases, readiness checks, phase changes, the SoR matrix
and reconciliation."""

from __future__ import annotations

import getpass
import json

import click

from hub.cli.context import get_hub
from hub.reconcile import ReconciliationFailed
from hub.systems import UnknownSystem
from routing.lifecycle import Direction, LifecycleError, PhaseGateFailed


def _lifecycle(ctx: click.Context):
    return get_hub(ctx).extras["lifecycle"]


def _who(who: str | None) -> str:
    if who:
        return who
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no login name in a container: say so rather than invent one
        return "cli (unknown user)"


def _table(rows: list[list[str]], headers: list[str]) -> str:
    widths = [max(len(str(x)) for x in col) for col in zip(headers, *rows)]
    line = lambda r: "  ".join(str(x).ljust(w) for x, w in zip(r, widths))
    return "\n".join([line(headers), line(["-" * w for w in widths]), *(line(r) for r in rows)])


@click.group("systems", invoke_without_command=True)
@click.pass_context
def systems(ctx: click.Context) -> None:
    """Legacy systems and their lifecycle phase (connected → hub_primary → read_only → decommissioned)."""
    if ctx.invoked_subcommand is None:
        ctx.invoke(list_)


@systems.command("list")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def list_(ctx: click.Context, as_json: bool) -> None:
    """Every system with its phase, adapter state, records and last reconciliation."""
    rows = _lifecycle(ctx).overview()
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    click.echo(_table([[r["system"], r["phase"], "on" if r["adapter_enabled"] else "off", r["records"],
                        "-" if not r["reconciliation"] else ("clean" if r["reconciliation"]["clean"] else
                                                             f"{r['reconciliation']['unexplained']} diff(s)"),
                        r["since"] or "-", r["changed_by"] or "-"] for r in rows],
                      ["system", "phase", "adapter", "records", "reconciliation", "since", "by"]))


@systems.command("checks")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def checks(ctx: click.Context, name: str, as_json: bool) -> None:
    """The readiness checks gating NAME's next phase, with evidence (runs a reconciliation)."""
    try:
        result = _lifecycle(ctx).checks(name)
    except UnknownSystem as exc:
        raise click.ClickException(str(exc)) from exc
    if as_json:
        click.echo(json.dumps(result, indent=2, default=str))
        return
    if result["target"] is None:
        click.echo(f"{name} is {result['phase']}: {result['detail']}")
        return
    click.echo(f"{name}: {result['phase']} → {result['target']}: {'READY' if result['ready'] else 'NOT READY'}")
    for c in result["checks"]:
        click.echo(f"  [{'pass' if c['passed'] else 'FAIL'}] {c['name']}: {c['detail']}")


def _step(ctx: click.Context, name: str, reason: str, who: str | None, direction: Direction) -> None:
    lifecycle = _lifecycle(ctx)
    act = lifecycle.advance if direction is Direction.ADVANCE else lifecycle.revert
    try:
        result = act(name, who=_who(who), reason=reason)
    except PhaseGateFailed as exc:
        lines = [f"refused: {name} cannot move to {exc.target.value}:"]
        lines += [f"  [FAIL] {c.name}: {c.detail}" for c in exc.failed]
        raise click.ClickException("\n".join(lines)) from exc
    except (LifecycleError, UnknownSystem) as exc:
        raise click.ClickException(f"refused: {exc}") from exc
    click.echo(f"{name}: {result['from']} → {result['to']} ({result['who']}: {result['why']})")


@systems.command("advance")
@click.argument("name")
@click.option("--reason", required=True, help="why (kept in the audit of transitions)")
@click.option("--who", default=None, help="default: your login name")
@click.pass_context
def advance(ctx: click.Context, name: str, reason: str, who: str | None) -> None:
    """Move NAME to its next phase if every readiness check passes."""
    _step(ctx, name, reason, who, Direction.ADVANCE)


@systems.command("revert")
@click.argument("name")
@click.option("--reason", required=True)
@click.option("--who", default=None)
@click.pass_context
def revert(ctx: click.Context, name: str, reason: str, who: str | None) -> None:
    """Step NAME back one phase (not possible once decommissioned)."""
    _step(ctx, name, reason, who, Direction.REVERT)


@systems.command("history")
@click.argument("name")
@click.pass_context
def history(ctx: click.Context, name: str) -> None:
    """Every phase change asked for NAME, done or refused."""
    for t in _lifecycle(ctx).detail(name)["transitions"]:
        failed = [c["name"] for c in t["checks"] if not c["passed"]]
        click.echo(f"{t['at']}  {t['from']} → {t['to']}  {t['outcome']}  {t['who']}: {t['why']}"
                   + (f"  (failed: {', '.join(failed)})" if failed else ""))


@systems.command("sor")
@click.option("--system", "only", default=None)
@click.option("--entity", default=None)
@click.pass_context
def sor(ctx: click.Context, only: str | None, entity: str | None) -> None:
    """The system-of-record matrix: per system, entity and field, who owns the value and why."""
    lifecycle = _lifecycle(ctx)
    rows = lifecycle.sor().rows([only] if only else lifecycle.names())
    rows = [r for r in rows if not entity or r["entity"] == entity]
    click.echo(_table([[r["system"], r["phase"], r["entity"], r["field"], r["owner"], r["source"]] for r in rows],
                      ["system", "phase", "entity", "field", "owner", "because"]))


@systems.command("reconcile")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def reconcile(ctx: click.Context, name: str, as_json: bool) -> None:
    """Compare NAME's current extract with the hub's mirror; print the differences with examples."""
    try:
        report = get_hub(ctx).extras["reconciler"].run(name, trigger="cli").as_dict()
    except (ReconciliationFailed, UnknownSystem) as exc:
        raise click.ClickException(str(exc)) from exc
    if as_json:
        click.echo(json.dumps(report, indent=2))
        return
    click.echo(f"{name}: {'clean' if report['clean'] else 'DIFFERENCES'}: legacy {report['legacy_count']} rows, "
               f"hub {report['hub_count']}; missing {report['missing']}, extra {report['extra']}, drifted "
               f"{report['drifted']}, not mirrored {report['unmirrored']}, explained by quarantine "
               f"{report['explained']}")
    for kind, examples in report["examples"].items():
        click.echo(f"  {kind}: {', '.join(examples)}")


def register(group: click.Group) -> None:
    group.add_command(systems)
