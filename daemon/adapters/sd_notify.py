"""The service manager protocol (sd_notify), without a dependency: one datagram per message
to ``$NOTIFY_SOCKET``. Silent when the daemon is not run by systemd."""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping

import anyio


def notify(message: str, env: Mapping[str, str] | None = None) -> bool:
    """Send ``message`` (e.g. ``READY=1``); False when there is no manager to tell."""
    env = os.environ if env is None else env
    address = env.get("NOTIFY_SOCKET", "")
    if not address:
        return False
    if address.startswith("@"):  # an abstract socket
        address = "\0" + address[1:]
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            sock.connect(address)
            sock.sendall(message.encode())
    except OSError:
        return False
    return True


def watchdog_interval(env: Mapping[str, str] | None = None) -> float | None:
    """Seconds between pings (half the manager's timeout), or None when none are expected."""
    env = os.environ if env is None else env
    usec, pid = env.get("WATCHDOG_USEC", ""), env.get("WATCHDOG_PID", "")
    if not usec.isdigit() or int(usec) == 0 or (pid and pid != str(os.getpid())):
        return None
    return int(usec) / 2_000_000


async def keep_watchdog_fed(interval: float) -> None:
    """Ping from the event loop itself, so a stuck loop stops the pings and gets restarted."""
    while True:
        notify("WATCHDOG=1")
        await anyio.sleep(interval)
