"""tau2-bench results importer, on small hand-written files in tau2's two layouts."""

import copy
import gzip
import json
from pathlib import Path

import pytest

from toolcast.data import ImportReport, Message, ToolCall, TraceFormatError, load_traces
from toolcast.data.formats import tau2

FIXTURES = Path(__file__).parent.parent / "fixtures" / "tau2"
RESULTS = FIXTURES / "results_telecom.json"
ADAPTIVE = FIXTURES / "adaptive_airline.json"
T0 = 1748779200.0  # 2025-06-01T12:00:00 UTC


def doc(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def write(tmp_path: Path, d: dict, name: str = "run.json") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(d), encoding="utf-8")
    return path


def by_id(traces):
    return {t.trace_id: t for t in traces}


def test_sniff_accepts_both_layouts_and_nothing_else():
    assert tau2.sniff(doc(RESULTS)) and tau2.sniff(doc(ADAPTIVE))
    assert not tau2.sniff({"simulations": []})
    assert not tau2.sniff({"simulations": [{"id": "x"}]})
    assert not tau2.sniff({"messages": [{"role": "user", "content": "hi"}]})
    assert not tau2.sniff([{"simulations": [{"messages": []}]}])


def test_results_layout_one_trace_per_simulation():
    traces = by_id(load_traces(RESULTS))
    assert set(traces) == {"sim-a", "sim-b"}
    t = traces["sim-a"]
    assert (t.group, t.source) == ("telecom:t1", "tau2")
    meta = t.metadata
    assert meta["domain"] == "telecom" and meta["task_id"] == "t1" and meta["trial"] == 0
    assert (meta["agent_model"], meta["agent_implementation"]) == ("agent-llm", "llm_agent")
    assert meta["user_model"] == "user-llm"
    assert (meta["termination_reason"], meta["reward"]) == ("user_stop", 1.0)
    assert meta["file"] == "results_telecom.json" and meta["layout"] == "results"
    assert meta["looping"] is False and meta["n_user_tool_calls"] == 1
    # The policy is the system prompt, once, first.
    assert t.events[0] == Message(role="system", text="# Telecom policy\nHelp the customer.")
    assert len(meta["policy_sha"]) == 16


def test_parallel_calls_share_the_turn_of_their_assistant_message():
    t = by_id(load_traces(RESULTS))["sim-a"]
    kinds = [(e.type, e.role if isinstance(e, Message) else e.tool, e.turn) for e in t.events]
    assert kinds[3:6] == [("message", "assistant", 1), ("tool_call", "get_customer_by_phone", 1),
                          ("tool_call", "get_details_by_id", 1)]
    first, second = t.calls[:2]
    assert first.call_id == "call_1" and first.args == {"phone_number": "555-0100"}
    assert first.output == '{"customer_id": "C1", "line_ids": ["L1"]}' and first.error is False
    assert second.output == "Error: line L9 not found" and second.error is True
    assert t.calls[2].turn == 2
    # Every assistant message is a Message; one without calls has no turn.
    assistant = [e for e in t.events if isinstance(e, Message) and e.role == "assistant"]
    assert [a.text for a in assistant] == [
        "Hi! How can I help you today?", "", "Please check your status bar.", "Let me refuel it.", "Done."]
    assert [a.turn for a in assistant] == [None, 1, None, 2, None]
    # One decision point for the parallel turn, labelled with both calls.
    labels = [label.tools for _, label in t.decision_points()]
    assert ["get_customer_by_phone", "get_details_by_id"] in labels


def test_timestamps_become_unix_seconds():
    t = by_id(load_traces(RESULTS))["sim-a"]
    greeting = t.events[1]
    assert greeting.t_end == pytest.approx(T0) and greeting.t_start is None
    call = t.calls[0]
    assert call.t_start == pytest.approx(T0 + 2.5) and call.t_end == pytest.approx(T0 + 2.75)
    assert t.calls[1].t_end == pytest.approx(T0 + 3.0)
    assert t.metadata["start_time"] == pytest.approx(T0)
    assert t.events[3].tokens == 30  # usage.completion_tokens


def test_user_simulator_calls_stay_with_the_user_message():
    t = by_id(load_traces(RESULTS))["sim-a"]
    assert "check_status_bar" not in {c.tool for c in t.calls}
    users = [e for e in t.events if isinstance(e, Message) and e.role == "user"]
    # The user's call, its result and the next user text are one user message: no decision point between.
    assert [u.text for u in users] == [
        "My data is off. Phone 555-0100.", "It says no data.", "Thanks ###STOP###"]
    (user_call,) = users[1].extra["user_tool_calls"]
    assert user_call["name"] == "check_status_bar" and user_call["arguments"] == {}
    assert user_call["output"] == "Status Bar: no data" and user_call["error"] is False
    assert user_call["t_end"] == pytest.approx(T0 + 5.1)
    assert users[1].t_end == pytest.approx(T0 + 6.0) and users[1].tokens == 11
    points = list(t.decision_points())
    assert sum(1 for ctx, _ in points if ctx.events and ctx.events[-1] is users[1]) == 1


def test_tool_specs_are_synthesized_from_the_calls_seen():
    traces = load_traces(RESULTS)
    specs = {s.name: s for s in traces[0].tools}
    assert set(specs) == {"get_customer_by_phone", "get_details_by_id", "refuel_data"}  # no user tools
    refuel = specs["refuel_data"].parameters
    assert refuel["properties"]["gb_amount"] == {"type": "number"}  # 2 and 1.5 seen
    assert refuel["properties"]["line_id"] == {"type": "string"}
    assert sorted(refuel["required"]) == ["customer_id", "gb_amount", "line_id"]
    assert specs["refuel_data"].description == "" and specs["refuel_data"].annotations == {}
    assert traces[0].metadata["tools_synthesized"] is True
    assert [s.name for s in traces[1].tools] == [s.name for s in traces[0].tools]


def test_tool_defs_are_used_when_present(tmp_path):
    d = doc(RESULTS)
    d["info"]["environment_info"]["tool_defs"] = {
        "refuel_data": {"name": "refuel_data", "doc": "Add data.", "returns": None,
                        "params": {"type": "object", "properties": {"customer_id": {"type": "string"}}}}}
    traces = load_traces(write(tmp_path, d))
    assert [(s.name, s.description) for s in traces[0].tools] == [("refuel_data", "Add data.")]
    assert traces[0].metadata["tools_synthesized"] is False


def test_repeated_call_ids_are_matched_in_order_and_made_unique():
    t = by_id(load_traces(RESULTS))["sim-b"]
    ids = [c.call_id for c in t.calls]
    assert len(set(ids)) == 5 and all(c.extra["tau2_id"] == "" for c in t.calls)
    assert [c.t_end - T0 for c in t.calls] == pytest.approx([3602.0, 3604.0, 3606.0, 3608.0, 3609.5])
    t.validate()


def test_looping_simulations_are_kept_and_flagged():
    t = by_id(load_traces(RESULTS))["sim-b"]
    assert len(t.calls) == 5
    assert t.metadata["looping"] is True and t.metadata["identical_repeats"] == 4
    assert t.metadata["longest_identical_run"] == 5


def test_adaptive_agent_layout():
    traces = by_id(load_traces(ADAPTIVE))
    t = traces["sim-c"]
    assert t.group == "airline:0"
    assert t.metadata["agent_model"] == "agent-model-2"
    assert t.metadata["agent_implementation"] == "adaptive_agent"
    assert t.metadata["user_model"] is None and t.metadata["layout"] == "adaptive_agent"
    assert t.events[0].role == "system" and t.events[0].text == "# Airline policy\nBe careful."
    (call,) = t.calls
    assert call.tool == "get_reservation_details" and call.output.startswith('{"reservation_id"')
    asked = t.events[3]
    assert asked.turn == 1 and asked.t_start == pytest.approx(asked.t_end - 2.5)  # generation_time_seconds
    assert call.t_end - call.t_start == pytest.approx(0.25)
    # A simulation that failed before any message is still imported.
    empty = traces["sim-d"]
    assert empty.events == [] and empty.metadata["termination_reason"] == "infrastructure_error"


def test_gzip_and_a_repeated_simulation_id(tmp_path):
    d = doc(RESULTS)
    d["simulations"].append(copy.deepcopy(d["simulations"][0]))
    d["simulations"][-1]["trial"] = 1
    path = tmp_path / "run.json.gz"
    path.write_bytes(gzip.compress(json.dumps(d).encode()))
    ids = [t.trace_id for t in load_traces(path)]
    assert ids == ["sim-a", "sim-b", "sim-a#trial1"]


@pytest.mark.parametrize(("sim", "msg", "field", "value", "record_field"), [
    (0, 1, "content", 5, r"messages\[1\], field 'content': expected str, got int"),
    (0, 2, "tool_calls", {"id": "x"}, r"messages\[2\], field 'tool_calls': expected list, got dict"),
    (0, 3, "error", "yes", r"messages\[3\], field 'error': expected bool, got str"),
    (0, 1, "timestamp", "yesterday", r"messages\[1\], field 'timestamp': expected an ISO-8601"),
    (1, 0, "usage", {"completion_tokens": "9"}, r"messages\[0\], field 'usage.completion_tokens'"),
])
def test_a_wrong_type_names_the_record_and_field(tmp_path, sim, msg, field, value, record_field):
    d = doc(RESULTS)
    d["simulations"][sim]["messages"][msg][field] = value
    where = rf"run\.json(, line 1)?, record simulations\[{sim}\]\."
    with pytest.raises(TraceFormatError, match=where + record_field):
        load_traces(write(tmp_path, d))


def test_a_wrong_call_argument_type_names_the_call(tmp_path):
    d = doc(RESULTS)
    d["simulations"][0]["messages"][2]["tool_calls"][1]["arguments"] = '{"id": "L9"}'
    with pytest.raises(TraceFormatError, match=r"messages\[2\], field 'tool_calls\[1\]\.arguments'"):
        load_traces(write(tmp_path, d))


def test_a_tool_message_with_no_matching_call(tmp_path):
    d = doc(RESULTS)
    d["simulations"][0]["messages"][4]["id"] = "call_nobody"
    with pytest.raises(TraceFormatError, match=r"simulations\[0\]\.messages\[4\], field 'id': "
                                               r"tool message id 'call_nobody' matches no"):
        load_traces(write(tmp_path, d))


def test_skip_mode_skips_only_the_bad_simulation(tmp_path):
    d = doc(RESULTS)
    d["simulations"][0]["messages"][4]["id"] = "call_nobody"
    report = ImportReport()
    traces = load_traces(write(tmp_path, d), errors="skip", report=report)
    assert [t.trace_id for t in traces] == ["sim-b"]
    assert len(report.skipped) == 1 and "simulations[0].messages[4]" in str(report.skipped[0])
    assert isinstance(traces[0].events[2], Message) and isinstance(traces[0].events[3], ToolCall)


def test_a_bad_header_is_one_error(tmp_path):
    d = doc(RESULTS)
    d["info"]["environment_info"]["domain_name"] = ["telecom"]
    with pytest.raises(TraceFormatError, match=r"field 'info\.environment_info\.domain_name': expected str"):
        load_traces(write(tmp_path, d))
    del d["info"]
    with pytest.raises(TraceFormatError, match=r"simulations\[0\], field 'domain': no domain"):
        load_traces(write(tmp_path, d))
