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


def test_a_second_adapter_cannot_give_a_shared_tool_another_contract():
    rt = SpeculativeRuntime(())
    Bridge(rt, {"get_order": read_only(30.0)}).register(ToolSpec("get_order"), _bare)
    with pytest.raises(ValueError, match="get_order.*another adapter"):
        Bridge(rt, {}).register(ToolSpec("get_order"), _bare)  # deny: not the contract it runs under


def test_an_adapter_tool_never_replaces_a_tool_of_the_runtime_s_own():
    rt = SpeculativeRuntime([Tool("get_order", lambda order_id: "mine")])
    with pytest.raises(ValueError, match="registered already"):
        Bridge(rt).register(ToolSpec("get_order"), _bare)
