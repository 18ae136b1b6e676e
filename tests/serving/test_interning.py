"""Event interning (serving/interning.py): same JSON -> same object, and predictions exactly as without."""

from __future__ import annotations

import copy
import json
import threading
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from toolcast.data.load import load_traces
from toolcast.data.samples import sample_files
from toolcast.data.schema import ToolCall
from toolcast.serving import ServeSettings
from toolcast.serving.app import create_app
from toolcast.serving.client import context_body
from toolcast.serving.interning import EventInterner
from toolcast.serving.schemas import PredictRequest, convert_event

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "model_tiny"


@pytest.fixture(scope="module")
def sessions() -> list[list[dict]]:
    """Growing histories (request bodies, step by step) of a few bundled sample traces."""
    out = []
    for path in sample_files():
        for trace in load_traces(path)[:1]:
            bodies = [context_body(ctx, 3) for ctx, _ in trace.decision_points()][:12]
            out.append(bodies)
    return out


def _client(intern_events: int, batching: bool) -> TestClient:
    return TestClient(create_app(ServeSettings(model_dir=FIXTURE, intern_events=intern_events,
                                               batching=batching, load_in_background=False)))


def _interned_events(client: TestClient) -> EventInterner:
    interner = client.app.state.serving.interner
    assert interner is not None
    return interner


@pytest.mark.parametrize("batching", [True, False])
def test_growing_histories_answer_the_same_with_and_without_interning(sessions, batching):
    with _client(0, batching) as plain, _client(4096, batching) as interned:
        assert plain.app.state.serving.interner is None
        # Sessions interleaved, as concurrent agents send them, then every body again (all hits).
        steps = max(len(s) for s in sessions)
        order = [s[i] for _ in range(2) for i in range(steps) for s in sessions if i < len(s)]
        for body in order:
            want = plain.post("/v1/predict", json=body)
            got = interned.post("/v1/predict", json=body)
            assert want.status_code == got.status_code == 200
            assert got.json() == want.json()
        batch = {"requests": [s[-1] for s in sessions]}
        assert interned.post("/v1/predict/batch", json=batch).json() == \
            plain.post("/v1/predict/batch", json=batch).json()
        interner = _interned_events(interned)
        assert interner.hits > interner.misses > 0
        metrics = interned.get("/metrics").text
        assert f"toolcast_event_intern_hits_total {float(interner.hits)}" in metrics
        assert "toolcast_event_intern_hits" not in plain.get("/metrics").text
        # The server never mutated a shared object: each is still what its JSON converts to.
        for key, event in interner._d.items():
            assert event == convert_event(json.loads(key.split("\x00")[0]), "")


def _call(output: str | None) -> dict:
    return {"type": "tool_call", "call_id": "c1", "turn": 0, "tool": "get_user",
            "args": {"user_id": "user_1"}, "output": output, "error": False, "t_start": 1.0, "t_end": 1.1}


def test_a_changed_event_is_built_afresh_and_unchanged_ones_are_shared():
    interner = EventInterner(100)
    user = {"type": "message", "role": "user", "text": "I am user_1, where is my order?"}
    first = PredictRequest(events=[user, _call(None)]).to_context(interner=interner).events
    again = PredictRequest(events=[copy.deepcopy(user), _call(None)]).to_context(interner=interner).events
    filled = PredictRequest(events=[user, _call('{"orders": ["o9"]}')]).to_context(interner=interner).events
    assert again[0] is first[0] and again[1] is first[1]
    assert filled[0] is first[0]
    assert filled[1] is not first[1]
    assert isinstance(filled[1], ToolCall) and filled[1].output == '{"orders": ["o9"]}'
    assert first[1].output is None  # the old object is untouched
    # Same content, other number type or key order: not the same JSON, so not the same object.
    floaty = {**_call(None), "turn": 0, "t_start": 1}
    assert PredictRequest(events=[floaty]).to_context(interner=interner).events[0] is not first[1]
    assert (interner.hits, interner.misses) == (3, 4)


def test_a_changed_output_over_http_predicts_as_a_fresh_server(sessions):
    """Send a history with a call's output missing, then filled: the answer is a fresh server's."""
    body = next(b for s in sessions for b in s if any(e["type"] == "tool_call" and e.get("output")
                                                      for e in b["events"]))
    i = max(j for j, e in enumerate(body["events"]) if e["type"] == "tool_call" and e.get("output"))
    empty = copy.deepcopy(body)
    empty["events"][i]["output"] = None
    with _client(4096, True) as interned, _client(0, True) as fresh:
        interned.post("/v1/predict", json=empty)
        assert interned.post("/v1/predict", json=body).json() == fresh.post("/v1/predict", json=body).json()


def test_duplicates_in_one_request_stay_distinct_objects_and_the_lru_is_bounded():
    interner = EventInterner(3)
    msg = {"type": "message", "role": "assistant", "text": "ok"}
    events = PredictRequest(events=[msg, msg, msg]).to_context(interner=interner).events
    assert len({id(e) for e in events}) == 3
    again = PredictRequest(events=[msg, msg, msg]).to_context(interner=interner).events
    assert all(a is b for a, b in zip(events, again, strict=True))
    PredictRequest(events=[{"type": "message", "role": "user", "text": "x"}]).to_context(interner=interner)
    assert len(interner) == 3


def test_bad_events_still_name_their_field_and_are_not_kept():
    from toolcast.data.schema import SchemaError

    interner = EventInterner(10)
    with pytest.raises(SchemaError) as e:
        PredictRequest(events=[{"type": "message", "role": "user"}, {"type": "tool_call"}]).to_context(
            "requests[2].", interner)
    assert "requests[2].events[1]." in str(e.value)
    assert len(interner) == 1


def test_threads_share_one_object_per_event():
    interner = EventInterner(1000)
    bodies = [[{"type": "message", "role": "user", "text": f"m{i}"} for i in range(n)] for n in range(1, 40)]
    results: list[list] = []

    def work() -> None:
        results.extend(PredictRequest(events=b).to_context(interner=interner).events for b in bodies)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    by_text: dict[str, set[int]] = {}
    for events in results:
        for e in events:
            by_text.setdefault(e.text, set()).add(id(e))
    assert all(len(ids) == 1 for ids in by_text.values())


def test_settings_validate_and_zero_disables():
    with pytest.raises(ValueError, match="intern_events"):
        ServeSettings(model_dir=FIXTURE, intern_events=-1)
    assert ServeSettings.from_env({"TOOLCAST_SERVE_MODEL_DIR": str(FIXTURE),
                                   "TOOLCAST_SERVE_INTERN_EVENTS": "0"}).intern_events == 0
