"""`toolcast mcp-proxy`: a real MCP client session through the proxy (a subprocess) to a real MCP server.

The upstream (`mcp_upstream_server.py`, started by the proxy over stdio) is a shop whose read-only tools
take 0.3 s. The client makes the calls an agent would (an order, its shipment, then cancelling it), with
think time between them. Checks: the client gets exactly what the upstream gives a direct session; resources
and prompts are relayed; speculation served a call; the state-changing tool ran only when the client asked;
an untrusted server's annotations run nothing ahead.
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

import pytest

pytest.importorskip("mcp")

from mcp import Client, StdioServerParameters  # noqa: E402

from toolcast.data.schema import Message, ToolCall, Trace  # noqa: E402

UPSTREAM = Path(__file__).with_name("mcp_upstream_server.py")
CALLS = [("get_order", {"order_id": "W1"}), ("get_shipment", {"shipment_id": "S1"}),
         ("cancel_order", {"order_id": "W1"})]
THINK = 0.5


def recorded(path: Path) -> Path:
    """Sessions of an agent on this shop, as toolcast JSONL: order, its shipment, cancel."""
    lines = []
    for i in range(5):
        order, ship = f"W{10 + i}", f"S{20 + i}"
        out = {"order_id": order, "status": "pending", "shipment_id": ship}
        events = [Message("user", f"cancel {order}"), Message("assistant", "", turn=1),
                  ToolCall(f"a{i}", 1, "get_order", {"order_id": order}, json.dumps(out)),
                  Message("assistant", "", turn=2),
                  ToolCall(f"b{i}", 2, "get_shipment", {"shipment_id": ship},
                           json.dumps({"shipment_id": ship})),
                  Message("assistant", "", turn=3),
                  ToolCall(f"c{i}", 3, "cancel_order", {"order_id": order}, "{}")]
        lines.append(Trace(f"t{i}", f"g{i}", "test", {}, [], events).to_json())
    path.write_text("\n".join(lines) + "\n")
    return path


def upstream_cmd(log: Path) -> str:
    return f"{sys.executable} {UPSTREAM} {log}"


def proxy(tmp_path: Path, log: Path, *extra: str) -> StdioServerParameters:
    args = ["-m", "toolcast.cli.main", "mcp-proxy", "--upstream", upstream_cmd(log),
            "--baseline", str(recorded(tmp_path / "sessions.jsonl")), "--stats", str(tmp_path / "stats.json"),
            *extra]
    return StdioServerParameters(command=sys.executable, args=args, cwd=str(tmp_path))


async def session(server) -> tuple[list[str], list[str], str, str]:
    """The agent's calls with think time between them; tool names, texts, the resource, the prompt."""
    async with Client(server, cache=None) as c:
        names = sorted(t.name for t in (await c.list_tools()).tools)
        texts = []
        for tool, args in CALLS:
            await asyncio.sleep(THINK)
            r = await c.call_tool(tool, args)
            assert not r.is_error, r
            texts.append(r.content[0].text)
        resource = (await c.read_resource("shop://policy/cancellation")).contents[0].text
        prompt = (await c.get_prompt("apologise", {"name": "Ann"})).messages[0].content.text
    return names, texts, resource, prompt


def ran(log: Path) -> list[tuple[str, dict]]:
    if not log.exists():
        return []
    return [(r["tool"], r["args"]) for r in map(json.loads, log.read_text().splitlines())]


@pytest.fixture(scope="module")
def direct(tmp_path_factory):
    log = tmp_path_factory.mktemp("direct") / "ran.jsonl"
    argv = upstream_cmd(log).split()
    return asyncio.run(session(StdioServerParameters(command=argv[0], args=argv[1:])))


async def test_the_proxy_relays_exactly_and_speculates_trusted_reads(tmp_path, direct):
    log = tmp_path / "ran.jsonl"
    through = await session(proxy(tmp_path, log, "--trust", "shop"))
    assert through == direct
    stats = json.loads((tmp_path / "stats.json").read_text())["total"]
    assert stats["hits"] + stats["joins"] >= 1, stats
    calls = ran(log)
    assert [c for c in calls if c[0] == "cancel_order"] == [("cancel_order", {"order_id": "W1"})]
    assert calls.index(("get_shipment", {"shipment_id": "S1"})) < len(calls) - 1


async def test_an_untrusted_server_runs_nothing_ahead(tmp_path, direct):
    log = tmp_path / "ran.jsonl"
    through = await session(proxy(tmp_path, log))
    assert through == direct
    stats = json.loads((tmp_path / "stats.json").read_text())["total"]
    assert stats["launched"] == 0
    assert ran(log) == [(tool, args) for tool, args in CALLS]


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def test_the_proxy_over_streamable_http(tmp_path, direct):
    import signal
    import subprocess

    log, port = tmp_path / "ran.jsonl", free_port()
    argv = [sys.executable, "-m", "toolcast.cli.main", "mcp-proxy", "--upstream", upstream_cmd(log),
            "--trust", "shop", "--baseline", str(recorded(tmp_path / "sessions.jsonl")),
            "--transport", "http", "--port", str(port), "--stats", str(tmp_path / "stats.json")]
    proc = subprocess.Popen(argv, cwd=tmp_path, stderr=subprocess.PIPE, text=True)
    try:
        for _ in range(300):  # until it listens (starting Python and the upstream takes seconds here)
            try:
                _, writer = await asyncio.open_connection("127.0.0.1", port)
                writer.close()
                break
            except OSError:
                assert proc.poll() is None, proc.stderr.read()
                await asyncio.sleep(0.1)
        through = await session(f"http://127.0.0.1:{port}/mcp")
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=30)
    assert through == direct
    assert json.loads((tmp_path / "stats.json").read_text())["total"]["real_calls"] == len(CALLS)


def test_an_upstream_that_cannot_start_is_one_clear_error(tmp_path):
    import subprocess

    argv = [sys.executable, "-m", "toolcast.cli.main", "mcp-proxy",
            "--upstream", "no-such-mcp-server --stdio"]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert proc.returncode == 1
    assert "upstream 'no-such-mcp-server --stdio': cannot connect" in proc.stderr
    assert "Traceback" not in proc.stderr
