"""Debian's chromium driven by Playwright (never a downloaded browser), and the viewer's
login, for the browser tests and ``bench/bench_ui.py``."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from playwright.sync_api import Browser, Page, sync_playwright

from memlane.cli.uicmd import login_url
from tests.e2e.daemon import DaemonProcess

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]
ARTIFACTS = Path(__file__).parents[2] / "test-artifacts" / "ui"


@contextmanager
def launched() -> Iterator[Browser]:
    """Chromium on a fresh profile (Playwright gives each launch a new user-data-dir, and each
    context is a fresh, cookie-less session on top of it)."""
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        try:
            yield browser
        finally:
            browser.close()


def port_of(daemon: DaemonProcess) -> int:
    return int((daemon.paths.runtime / "tcp.port").read_text())


def base_url(daemon: DaemonProcess) -> str:
    return f"http://127.0.0.1:{port_of(daemon)}"


def log_in(page: Page, daemon: DaemonProcess) -> None:
    """Follow a one-time login link, as `memlane ui` prints it; land on the timeline."""
    page.goto(login_url(daemon.paths))
    page.wait_for_url(f"{base_url(daemon)}/ui/")


def screenshot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=False)
