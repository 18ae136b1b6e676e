"""Contracts: default deny, MCP annotations only from trusted servers, resource keys, replay policy."""

from __future__ import annotations

import json

import pytest

from toolcast.runtime.contracts import (
    DENY,
    ContractPolicy,
    ToolContract,
    keys_overlap,
    read_only,
    resolve_keys,
)
from toolcast.runtime.replay_contracts import load_replay_policy, policy_from_dict, replay_policy


def test_default_contract_denies():
    assert not DENY.speculable
    assert DENY.state_changing
    assert DENY.mutates is None  # undeclared: the whole session
    assert DENY.why_not() == "not side-effect-free"


@pytest.mark.parametrize("contract, reason", [
    (ToolContract(side_effect_free=True, idempotent=False, stable_for=10), "not idempotent"),
    (ToolContract(side_effect_free=True, idempotent=True, stable_for=0),
     "no freshness window (stable_for = 0)"),
    (ToolContract(side_effect_free=True, idempotent=True, stable_for=10, needs_confirmation=True),
     "needs confirmation"),
    (read_only(10), None),
])
def test_every_hazard_is_named(contract, reason):
    assert contract.why_not() == reason
    assert contract.speculable is (reason is None)


def test_mcp_annotations_count_only_for_trusted_servers():
    ann = {"readOnlyHint": True}
    assert not ToolContract.from_mcp(ann, trusted=False).speculable
    assert ToolContract.from_mcp(ann, trusted=True).speculable
    # readOnlyHint is necessary: absent means false in the spec.
    assert not ToolContract.from_mcp({}, trusted=True).speculable
    hints = {"idempotentHint": True, "destructiveHint": False}
    assert not ToolContract.from_mcp(hints, trusted=True).speculable
    # ...and not sufficient: the user's freshness window and confirmation rule still apply.
    assert not ToolContract.from_mcp(ann, trusted=True, stable_for=0).speculable
    assert not ToolContract.from_mcp(ann, trusted=True, needs_confirmation=True).speculable
    assert not ToolContract.from_mcp(ann, trusted=True, allow_open_world=False).speculable
    closed = {**ann, "openWorldHint": False}
    assert ToolContract.from_mcp(closed, trusted=True, allow_open_world=False).speculable


def test_resource_keys_fill_arguments_and_overlap():
    c = ToolContract(side_effect_free=True, idempotent=True, stable_for=5, reads=("order:{order_id}",))
    assert c.read_keys({"order_id": "A1"}) == frozenset({"order:A1"})
    assert resolve_keys(["order:{order_id}"], {}) == frozenset({"order:*"})  # unknown -> wildcard
    assert keys_overlap(frozenset({"order:A1"}), frozenset({"order:A1"}))
    assert not keys_overlap(frozenset({"order:A1"}), frozenset({"order:B2"}))
    assert keys_overlap(frozenset({"order:*"}), frozenset({"order:B2"}))
    assert keys_overlap(None, frozenset({"x"})) and keys_overlap(frozenset({"x"}), None)
    assert not keys_overlap(frozenset(), frozenset({"x"}))


def test_contract_json_round_trip_and_errors():
    c = ToolContract(side_effect_free=True, idempotent=True, stable_for=3, reads=("a",), mutates=None)
    assert ToolContract.from_dict(c.to_dict()) == c
    with pytest.raises(ValueError, match="tools.x: unknown field"):
        ToolContract.from_dict({"readonly": True}, "tools.x")
    with pytest.raises(ValueError, match="idempotent: expected true or false"):
        ToolContract.from_dict({"idempotent": "yes"})
    with pytest.raises(ValueError, match="reads: expected a list"):
        ToolContract.from_dict({"reads": "a"})
    with pytest.raises(ValueError, match="stable_for"):
        ToolContract(stable_for=-1)


def test_policy_precedence():
    policy = ContractPolicy(tools={"get_secret": DENY}, patterns=[("get_*", read_only(1))])
    assert policy.for_tool("get_user").speculable
    assert not policy.for_tool("get_secret").speculable
    assert not policy.for_tool("book_flight").speculable  # default deny


@pytest.mark.parametrize("name, ok", [
    ("get_user_details", True), ("search_direct_flight", True), ("check_network_status", True),
    ("calculate", True), ("ls", True), ("cat", True), ("displayCarStatus", True),
    ("cd", False), ("echo", False), ("book_reservation", False), ("toggle_airplane_mode", False),
    ("transfer_to_human_agents", False), ("authenticate_twitter", False), ("mystery", False),
])
def test_replay_policy_reads_by_name(name, ok):
    assert replay_policy().for_tool(name).speculable is ok


def test_replay_policy_override_file(tmp_path):
    f = tmp_path / "c.json"
    cd = {"side_effect_free": True, "idempotent": True, "stable_for": 1}
    f.write_text(json.dumps({"add_read_only": ["mystery"], "state_changing": ["get_and_lock_*"],
                             "tools": {"cd": cd}}))
    p = load_replay_policy(f)
    assert p.for_tool("mystery").speculable and p.for_tool("cd").speculable
    assert not p.for_tool("get_and_lock_seat").speculable
    assert p.for_tool("get_user").speculable


@pytest.mark.parametrize("doc, match", [
    ([], "expected a JSON object"),
    ({"readonly": []}, "unknown field"),
    ({"read_only": "get_*"}, "'read_only' must be a list"),
    ({"stable_for": 0}, "'stable_for' must be a positive"),
    ({"tools": {"x": {"bogus": 1}}}, "tools.x: unknown field"),
])
def test_replay_policy_errors_name_the_field(doc, match):
    with pytest.raises(ValueError, match=match):
        policy_from_dict(doc, "c.json")


def test_replay_policy_file_errors_name_the_file(tmp_path):
    f = tmp_path / "bad.json"
    f.write_text("{not json")
    with pytest.raises(ValueError, match="bad.json: line 1"):
        load_replay_policy(f)
    with pytest.raises(ValueError, match="cannot read"):
        load_replay_policy(tmp_path / "missing.json")
