"""``memlane ui``: a one-time login link to the viewer, opened in a browser when there is one.

The code is asked for over TCP with the challenge-response client, so the server on the port
the link names has proven it holds the token before a browser is sent there. The link is good
once, for a short while; the browser exchanges it for a session cookie.
"""

from __future__ import annotations

import webbrowser
from typing import Annotated

import typer

from memlane.cli.client import Client, DaemonError, DaemonUnavailable
from memlane.cli.render import fail
from memlane.daemon.adapters.paths import DEFAULT_PORT, Paths, resolve_paths

NoBrowser = Annotated[bool, typer.Option("--no-browser", help="Only print the link.")]


def login_url(paths: Paths) -> str:
    """A fresh one-time login link, from a daemon that proved it holds the token."""
    client = Client(paths, tcp_only=True)
    answer = client.request("POST", "/v1/ui/login-code")
    return f"http://127.0.0.1:{tcp_port(paths)}/ui/login?code={answer['code']}"


def tcp_port(paths: Paths) -> int:
    try:
        return int((paths.runtime / "tcp.port").read_text())
    except (OSError, ValueError):
        return DEFAULT_PORT


def ui_command(no_browser: NoBrowser = False) -> None:
    """Open the viewer: print a one-time login link and open it in a browser."""
    try:
        url = login_url(resolve_paths())
    except DaemonUnavailable as exc:
        fail(f"{exc}. Start it with `memlane up`.", code=2)
    except DaemonError as exc:
        fail(f"{exc.code}: {exc.message}", code=1)
    print(f"Open the viewer (the link works once, for two minutes):\n  {url}")
    if not no_browser and not webbrowser.open(url):
        print("No browser found here: open the link in a browser on this machine.")
