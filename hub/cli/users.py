"""`hub users …`: add, remove, set roles, list accounts, and mint API tokens."""

from __future__ import annotations

import click

from hub.cli.context import get_hub
from hub.services.view import access_policy
from hub.users import (
    UserError,
    add_user,
    create_token,
    list_users,
    remove_user,
    revoke_token,
    set_roles,
)

ACTOR = "cli"


def _check_roles(ctx: click.Context, roles: tuple[str, ...]) -> list[str]:
    known = set(access_policy(get_hub(ctx)).roles)
    unknown = sorted(set(roles) - known)
    if unknown:
        raise click.BadParameter(f"unknown role {', '.join(unknown)}; the policy has {', '.join(sorted(known))}")
    return list(roles)


@click.group("users")
def users() -> None:
    """Accounts of the people who use the hub, their roles and API tokens."""


@users.command("add")
@click.argument("username")
@click.option("--role", "roles", multiple=True, required=True, help="a role of config/access_policy.toml (repeat)")
@click.option("--password", prompt=True, hide_input=True, confirmation_prompt=True)
@click.option("--name", "display_name", default="")
@click.option("--worker-name", default=None, help="name involvements are allocated to (caseload)")
@click.option("--team", "teams", multiple=True, help="team whose involvements count as a relationship (repeat)")
@click.pass_context
def add(ctx: click.Context, username: str, roles: tuple[str, ...], password: str, display_name: str,
        worker_name: str | None, teams: tuple[str, ...]) -> None:
    try:
        user = add_user(get_hub(ctx).store, username, password, _check_roles(ctx, roles), actor=ACTOR,
                        display_name=display_name, worker_name=worker_name, teams=list(teams))
    except UserError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"added {user.username} ({', '.join(user.roles)})")


@users.command("remove")
@click.argument("username")
@click.pass_context
def remove(ctx: click.Context, username: str) -> None:
    try:
        remove_user(get_hub(ctx).store, username, actor=ACTOR)
    except UserError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"removed {username}")


@users.command("roles")
@click.argument("username")
@click.option("--role", "roles", multiple=True, required=True)
@click.option("--worker-name", default=None)
@click.option("--team", "teams", multiple=True)
@click.pass_context
def roles_(ctx: click.Context, username: str, roles: tuple[str, ...], worker_name: str | None,
           teams: tuple[str, ...]) -> None:
    try:
        user = set_roles(get_hub(ctx).store, username, _check_roles(ctx, roles), actor=ACTOR,
                         worker_name=worker_name, teams=list(teams) if teams else None)
    except UserError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"{user.username}: {', '.join(user.roles)}")


@users.command("list")
@click.pass_context
def list_(ctx: click.Context) -> None:
    for u in list_users(get_hub(ctx).store):
        extra = f" worker={u.worker_name}" if u.worker_name else ""
        extra += f" teams={','.join(u.teams)}" if u.teams else ""
        click.echo(f"{u.username}\t{','.join(u.roles)}{extra}")


@users.command("token")
@click.argument("username")
@click.option("--name", default="", help="what the token is for")
@click.option("--days", default=90, show_default=True, help="days until it expires (0: never)")
@click.option("--revoke", "revoke_prefix", default=None, help="revoke the token with this prefix instead")
@click.pass_context
def token(ctx: click.Context, username: str, name: str, days: int, revoke_prefix: str | None) -> None:
    """Mint an API token (shown once; only its hash is kept), or revoke one."""
    store = get_hub(ctx).store
    try:
        if revoke_prefix:
            revoke_token(store, revoke_prefix, actor=ACTOR)
            click.echo(f"revoked {revoke_prefix}")
            return
        click.echo(create_token(store, username, name=name, days=days or None, actor=ACTOR))
    except UserError as exc:
        raise click.ClickException(str(exc)) from exc


def register(group: click.Group) -> None:
    group.add_command(users)
