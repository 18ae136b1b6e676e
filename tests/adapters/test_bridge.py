"""The bridge every adapter shares: adapters on one runtime register each tool once, with one contract."""

from __future__ import annotations

import pytest

from toolcast.adapters.bridge import Bridge
from toolcast.data.schema import ToolSpec
from toolcast.runtime import SpeculativeRuntime, Tool, read_only


async def _bare(session, args):
    return "ok"


def test_adapters_sharing_a_runtime_register_a_tool_once():
    """The runtime refuses a second tool of one name (issue 16); a second adapter reuses the first's."""
    rt = SpeculativeRuntime(())
    contracts = {"get_order": read_only(30.0)}
    first, second = Bridge(rt, contracts), Bridge(rt, contracts)
    tool = first.register(ToolSpec("get_order"), _bare)
    assert second.register(ToolSpec("get_order"), _bare) is tool
    assert second.tools == {"get_order": tool}
    with pytest.raises(ValueError, match="two tools named 'get_order'"):
        second.register(ToolSpec("get_order"), _bare)  # one agent's own duplicate is still an error


def test_a_second_adapter_cannot_give_a_shared_tool_another_contract():
    rt = SpeculativeRuntime(())
    Bridge(rt, {"get_order": read_only(30.0)}).register(ToolSpec("get_order"), _bare)
    with pytest.raises(ValueError, match="get_order.*another adapter"):
        Bridge(rt, {}).register(ToolSpec("get_order"), _bare)  # deny: not the contract it runs under


def test_an_adapter_tool_never_replaces_a_tool_of_the_runtime_s_own():
    rt = SpeculativeRuntime([Tool("get_order", lambda order_id: "mine")])
    with pytest.raises(ValueError, match="registered already"):
        Bridge(rt).register(ToolSpec("get_order"), _bare)


async def test_routes_of_sessions_the_runtime_ended_on_its_own_are_forgotten():
    """An adapter that never ends its sessions (a plain ToolNode, an MCP client): the runtime ends them
    (issue 16: beyond max_sessions, or idle), and the bridge must not keep a route per session forever."""
    from toolcast.adapters.bridge import _ROUTES
    from toolcast.runtime import RuntimeConfig

    rt = SpeculativeRuntime((), None, RuntimeConfig(max_sessions=4))
    bridge = Bridge(rt)
    bridge.register(ToolSpec("get_order"), _bare)

    async def run():
        return "real"

    for i in range(300):
        bridge.start(f"s{i}")
        assert await bridge.call(f"s{i}", "get_order", {}, run) == "real"
    assert len(rt.session_ids()) <= 4 + 1
    assert len(_ROUTES[rt]) <= 2 * 5 + 64 + 1
    assert await bridge.call("s0", "get_order", {}, run) == "real"  # a session the agent goes on with
    assert _ROUTES[rt]["s0"] is bridge._bare  # noqa: SLF001 - routed again
    await rt.aclose()
