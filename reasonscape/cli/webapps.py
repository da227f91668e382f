"""leaderboard.py, explorer.py, spiderweb.py: argument parsing and error reporting only.

Every check (dataset, --group-by, --url-base-pathname, the port) runs before the server starts, so a
mistake is one `error: ...` line and exit code 2 (bad input) or 1 (port taken), never a traceback.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

from reasonscape.cli.common import run_command

DEFAULT_PORTS = {"leaderboard": 8050, "explorer": 8051, "spiderweb": 8051}
GROUP_BY_HELP = ("Aggregation dimension, fixed at startup: base_task, or for single-task datasets e.g. "
                 "manifold.target_tokens, params.<name>, facets.<name>")


def _common(app: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    def wrap(fn: Callable[..., Any]) -> Callable[..., Any]:
        fn = click.option("--debug", is_flag=True, help="Dash dev tools (error overlay, callback graph)")(fn)
        fn = click.option("--host", default="127.0.0.1", show_default=True,
                          help="Interface to listen on (0.0.0.0 exposes the app to the network)")(fn)
        fn = click.option("--url-base-pathname", "base", default="/", show_default=True,
                          help="URL base path for reverse-proxy deployments, e.g. /rs/")(fn)
        fn = click.option("--port", type=int, default=DEFAULT_PORTS[app], show_default=True,
                          help="Web server port")(fn)
        return click.argument("dataset", type=click.Path(dir_okay=True, path_type=str))(fn)
    return wrap


def launch(app_name: str, dataset: str, port: int, base: str, host: str, debug: bool, **kw: Any) -> None:
    """Open and check everything, bind the port, then serve (one line on stderr says where)."""
    from reasonscape.plots.web import marker_cells
    from reasonscape.webapps import server

    marker_cells()  # a bad REASONSCAPE_MARKER_CELLS is a one-line error now, not a failing callback later
    base = server.check_base_path(base)
    server.check_port(port)
    src = server.open_source(dataset)
    if app_name == "leaderboard":
        from reasonscape.webapps.leaderboard import build_app
    elif app_name == "spiderweb":
        from reasonscape.webapps.spiderweb import build_app
    else:
        from reasonscape.webapps.explorer import build_app
    app = build_app(src, base=base, **kw)
    if debug:
        app.enable_dev_tools(debug=True, dev_tools_hot_reload=False)
    server.serve(app, host, port, base)


@click.command(help="Interactive ReasonScore rankings with a heatmap per (eval, group).")
@_common("leaderboard")
@click.option("--group-by", default="base_task", show_default=True, help=GROUP_BY_HELP)
def leaderboard(dataset: str, port: int, base: str, host: str, debug: bool, group_by: str) -> None:
    from reasonscape.analysis.dimensions import check_dimension

    launch("leaderboard", dataset, port, base, host, debug, group_by=check_dimension(group_by))


@click.command(help="Per-eval radar charts with archetype labels and a token-efficiency overlay.")
@_common("spiderweb")
@click.option("--group-by", default="base_task", show_default=True, help=GROUP_BY_HELP)
def spiderweb(dataset: str, port: int, base: str, host: str, debug: bool, group_by: str) -> None:
    from reasonscape.analysis.dimensions import check_dimension

    launch("spiderweb", dataset, port, base, host, debug, group_by=check_dimension(group_by))


@click.command(help="3-D accuracy surfaces over the config's 2-dim views, with synchronized panels.")
@_common("explorer")
@click.option("--tokenizer", default=None, help="HuggingFace tokenizer (id or local path): adds the FFT panel")
def explorer(dataset: str, port: int, base: str, host: str, debug: bool, tokenizer: str | None) -> None:
    launch("explorer", dataset, port, base, host, debug, tokenizer=tokenizer)


COMMANDS = {"leaderboard": leaderboard, "spiderweb": spiderweb, "explorer": explorer}


def main(app_name: str, args: list[str] | None = None) -> None:
    cmd = COMMANDS[app_name]
    cmd.name = f"{app_name}.py"
    run_command(cmd, args)
