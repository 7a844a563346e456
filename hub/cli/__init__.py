"""The `hub` console script. Each module in this package that defines
`register(group: click.Group)` adds its commands, so areas add commands
without editing a shared file."""

from __future__ import annotations

import importlib
import pkgutil

import click


class _HubGroup(click.Group):
    """Turns a mapping file's error (it names the file, line and field) into a plain CLI error."""

    def invoke(self, ctx: click.Context):  # noqa: ANN201 - click's own signature
        from adapters.errors import MappingError

        try:
            return super().invoke(ctx)
        except MappingError as exc:
            raise click.ClickException(str(exc)) from None


@click.group(cls=_HubGroup)
@click.option("--config", "config_path", envvar="HUB_CONFIG", default="hub.toml", show_default=True,
              help="path of hub.toml (missing file: built-in defaults)")
@click.pass_context
def main(ctx: click.Context, config_path: str) -> None:
    """Transition hub: federate legacy children's-services systems while they are replaced."""
    ctx.ensure_object(dict)
    ctx.obj["config_path"] = config_path


def _register_all() -> None:
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        module = importlib.import_module(f"{__name__}.{info.name}")
        register = getattr(module, "register", None)
        if register:
            register(main)


_register_all()
