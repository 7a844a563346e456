"""How a CLI command gets the hub: from the config file named on the command line."""

from __future__ import annotations

import click

from hub.bootstrap import Hub, bootstrap
from hub.config import ConfigError, load_config


def get_hub(ctx: click.Context, *, migrate: bool = True) -> Hub:
    root = ctx.find_root()
    if "hub" not in root.obj:
        try:
            config = load_config(root.obj.get("config_path", "hub.toml"))
        except ConfigError as exc:
            raise click.ClickException(str(exc)) from exc
        root.obj["hub"] = bootstrap(config, migrate=migrate)
        root.call_on_close(root.obj["hub"].close)
    return root.obj["hub"]
