"""The official MCP conformance suite (`@modelcontextprotocol/conformance`, pinned with Node 22
and the bridge in .ci/node-tools, installed by .ci/run) against `memlane mcp` on a real daemon.

The suite speaks streamable HTTP; memlane's MCP server speaks stdio, which is what Claude Code
starts. A test-only bridge (`supergateway`, held to 127.0.0.1 by loopback_bridge.mjs) spawns
`memlane mcp` per session and relays. Every server scenario the suite lists is either applicable
(it must pass) or not: the reason names what memlane does not declare or serve, and the test
checks that this is still so, so a capability added later moves its scenarios here."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NamedTuple

import anyio
import pytest
from mcp import ClientSession, StdioServerParameters, stdio_client

from tests.e2e.daemon import DaemonProcess
from tests.tools import MEMLANE, missing

PINS = Path(__file__).resolve().parents[2] / ".ci" / "node-tools" / "package.json"
SHIM = Path(__file__).with_name("loopback_bridge.mjs")
RUN_TIMEOUT = 60.0

APPLICABLE = {
    "server-initialize": "the handshake every client makes: server info, version, capabilities",
    "ping": "a liveness request any server answers",
    "tools-list": "memlane declares tools: each has a name, a description and an input schema",
    "server-sse-multiple-streams": "three tools/list requests in flight in one session",
}


class NotApplicable(NamedTuple):
    needs: str  # "capability:X" memlane does not declare, "tool:X" it does not serve, or "http"
    why: str


def undeclared(capability: str, why: str) -> NotApplicable:
    return NotApplicable(f"capability:{capability}", why)


def fixture_tool(name: str, what: str) -> NotApplicable:
    return NotApplicable(f"tool:{name}", f"calls `{name}`, a fixture tool of the suite's "
                                         f"reference server that {what}; memlane serves only "
                                         "its memory tools")


NO_RESOURCES = "memlane declares no resources: memories are reached through its tools"
NO_PROMPTS = "memlane declares no prompts"
NOT_APPLICABLE = {
    "logging-set-level": undeclared(
        "logging", "memlane declares no logging: it logs to stderr, never to the client"),
    "completion-complete": undeclared(
        "completions", "memlane declares no completions: it has no prompt or resource "
                       "template arguments to complete"),
    "tools-call-simple-text": fixture_tool("test_simple_text", "returns a fixed text"),
    "tools-call-image": fixture_tool("test_image_content", "returns an image"),
    "tools-call-audio": fixture_tool("test_audio_content", "returns audio"),
    "tools-call-embedded-resource": fixture_tool("test_embedded_resource",
                                                 "returns an embedded resource"),
    "tools-call-mixed-content": fixture_tool("test_multiple_content_types",
                                             "returns text, image and resource"),
    "tools-call-with-logging": fixture_tool("test_tool_with_logging",
                                            "sends log notifications (no logging declared)"),
    "tools-call-error": fixture_tool("test_error_handling", "always fails (memlane's own "
                                     "tool errors: tests/e2e/test_mcp.py)"),
    "tools-call-with-progress": fixture_tool("test_tool_with_progress",
                                             "sends progress notifications"),
    "tools-call-sampling": fixture_tool("test_sampling", "asks the client to sample an LLM"),
    "tools-call-elicitation": fixture_tool("test_elicitation", "asks the user for input"),
    "elicitation-sep1034-defaults": fixture_tool("test_elicitation_sep1034_defaults",
                                                 "elicits with default values"),
    "elicitation-sep1330-enums": fixture_tool("test_elicitation_sep1330_enums",
                                              "elicits enum choices"),
    "json-schema-2020-12": fixture_tool("json_schema_2020_12_tool",
                                        "has a 2020-12 schema with $defs"),
    "server-sse-polling": fixture_tool("test_reconnection", "closes its stream mid-call"),
    "resources-list": undeclared("resources", NO_RESOURCES),
    "resources-read-text": undeclared("resources", NO_RESOURCES),
    "resources-read-binary": undeclared("resources", NO_RESOURCES),
    "resources-templates-read": undeclared("resources", NO_RESOURCES),
    "resources-subscribe": undeclared("resources", NO_RESOURCES),
    "resources-unsubscribe": undeclared("resources", NO_RESOURCES),
    "prompts-list": undeclared("prompts", NO_PROMPTS),
    "prompts-get-simple": undeclared("prompts", NO_PROMPTS),
    "prompts-get-with-args": undeclared("prompts", NO_PROMPTS),
    "prompts-get-embedded-resource": undeclared("prompts", NO_PROMPTS),
    "prompts-get-with-image": undeclared("prompts", NO_PROMPTS),
    "dns-rebinding-protection": NotApplicable(
        "http", "checks the Host/Origin validation of an HTTP transport: memlane serves MCP "
                "on stdio only, and the HTTP side here is the test's bridge (which checks "
                "neither: one reason memlane does not offer MCP over HTTP)"),
}
# A scenario memlane fails because it declares no logging: run too, to show that a failed
# scenario is seen as one (a harness that cannot fail proves nothing).
SENTINEL = "logging-set-level"


class NodeTools(NamedTuple):
    node: Path
    conformance: Path
    bridge: Path


@pytest.fixture
def node_tools() -> NodeTools:
    """The pinned tools in .ci/run's cache prefix; a skip locally, a failure in CI without."""
    prefix = Path(os.environ.get("MEMLANE_NODE_TOOLS") or Path(
        os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "memlane" / "node-tools")
    modules = prefix / "node_modules"
    pins = json.loads(PINS.read_text())["dependencies"]
    for package, pinned in pins.items():
        manifest = modules / package / "package.json"
        found = json.loads(manifest.read_text())["version"] if manifest.exists() else None
        if found != pinned:
            missing(f"{package}@{pinned} is not in {prefix} (found {found}; the MCP "
                    "conformance suite needs it)")
    return NodeTools(modules / ".bin" / "node",
                     modules / "@modelcontextprotocol" / "conformance" / "dist" / "index.js",
                     modules / "supergateway" / "dist" / "index.js")


def listed_scenarios(tools: NodeTools) -> set[str]:
    done = subprocess.run([tools.node, tools.conformance, "list", "--server"],
                          capture_output=True, text=True, timeout=RUN_TIMEOUT, check=True)
    return set(re.findall(r"^\s+- (\S+)", done.stdout, re.MULTILINE))


async def declared(daemon: DaemonProcess) -> tuple[set[str], set[str]]:
    """The capabilities `memlane mcp` declares and the tools it serves."""
    params = StdioServerParameters(command=MEMLANE, args=["mcp"], env=daemon.env)
    # The server's stderr needs a real file descriptor; opening a local file does not block.
    with open(daemon.home / "mcp.stderr", "a") as errlog:  # noqa: ASYNC230
        async with (stdio_client(params, errlog=errlog) as (read, write),
                    ClientSession(read, write) as client):
            init = await client.initialize()
            tools = await client.list_tools()
    capabilities = init.capabilities.model_dump(exclude_none=True)
    return set(capabilities), {tool.name for tool in tools.tools}


@contextmanager
def bridge(tools: NodeTools, daemon: DaemonProcess) -> Iterator[str]:
    """`memlane mcp` behind supergateway's streamable HTTP; yields the endpoint's URL."""
    log = daemon.home / "bridge.log"
    command = [str(tools.node), "--import", SHIM.as_uri(), str(tools.bridge),
               "--stdio", f"{shlex.quote(MEMLANE)} mcp", "--outputTransport", "streamableHttp",
               "--stateful", "--sessionTimeout", "60000", "--port", "0"]
    with open(log, "wb") as out:
        process = subprocess.Popen(command, env=daemon.env, stdin=subprocess.DEVNULL,
                                   stdout=out, stderr=subprocess.STDOUT)
    try:
        yield f"http://127.0.0.1:{bridge_port(log, process)}/mcp"
    finally:
        process.terminate()  # the bridge stops the `memlane mcp` it spawned
        process.wait(timeout=10)


def bridge_port(log: Path, process: subprocess.Popen[bytes]) -> int:
    deadline = time.monotonic() + RUN_TIMEOUT
    while time.monotonic() < deadline:
        found = re.search(rb"memlane-bridge-port (\d+)", log.read_bytes())
        if found:
            return int(found.group(1))
        assert process.poll() is None, tail(log)
        time.sleep(0.02)
    raise TimeoutError(tail(log))


def run_scenario(tools: NodeTools, url: str, scenario: str, out: Path) -> list[dict[str, Any]]:
    """The suite's checks of one scenario; a non-zero exit must come with a failed check."""
    done = subprocess.run([tools.node, tools.conformance, "server", "--url", url,
                           "--scenario", scenario, "-o", out / scenario],
                          capture_output=True, text=True, timeout=RUN_TIMEOUT, check=False)
    [checks] = list((out / scenario).glob("*/checks.json"))
    results: list[dict[str, Any]] = json.loads(checks.read_text())
    assert (done.returncode != 0) == bool(failures(results)), done.stdout + done.stderr
    return results


def failures(checks: list[dict[str, Any]]) -> list[str]:
    return [f"{check['id']}: {check.get('errorMessage')}" for check in checks
            if check["status"] in ("FAILURE", "WARNING")]


def test_every_listed_scenario_is_classified_and_the_applicable_ones_pass(
        node_tools: NodeTools, daemon: DaemonProcess, short_tmp: Path) -> None:
    """Each server scenario of the suite is applicable (passes, no warning) or not applicable
    for a reason that still holds; the sentinel scenario is reported failed."""
    assert listed_scenarios(node_tools) == APPLICABLE.keys() | NOT_APPLICABLE.keys()
    capabilities, served = anyio.run(declared, daemon)
    assert "tools" in capabilities
    offered = {"capability": capabilities, "tool": served, "http": set()}  # stdio only
    for scenario, (needs, why) in NOT_APPLICABLE.items():
        kind, _, name = needs.partition(":")
        assert name not in offered[kind], f"{scenario} applies now: {why} no longer holds"

    with bridge(node_tools, daemon) as url:
        outcomes = {scenario: failures(run_scenario(node_tools, url, scenario, short_tmp))
                    for scenario in [*APPLICABLE, SENTINEL]}
    assert outcomes.pop(SENTINEL), f"{SENTINEL} passed: the harness cannot see a failure"
    failed = {scenario: checks for scenario, checks in outcomes.items() if checks}
    assert not failed, f"{failed}\nbridge log (end):\n{tail(daemon.home / 'bridge.log')}"


def tail(path: Path) -> str:
    return path.read_text(errors="replace")[-3000:]
