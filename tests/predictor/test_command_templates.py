"""Command templates in the value maps: a shell line composed of fixed text and a path just listed."""

from __future__ import annotations

import json

from toolcast.data import Context, Message, ToolCall, ToolSpec, Trace
from toolcast.predictor.baselines.pattern_pool import PatternPoolPredictor
from toolcast.predictor.baselines.templates import MARK, fill, template_of
from toolcast.predictor.baselines.value_maps import mine_value_maps
from toolcast.predictor.baselines.value_sources import describe

SHELL = ToolSpec("shell", parameters={"type": "object", "properties": {
    "command": {"type": "array", "items": {"type": "string"}}, "workdir": {"type": "string"}}})


def test_a_template_replaces_the_longest_whole_word_path_everywhere():
    value = ["bash", "-lc", "wc -l src/a.py && sed -n '1,40p' src/a.py"]
    template = template_of(value, ["a.py", "src/a.py", "src/a.pyc"])
    assert template == json.dumps(["bash", "-lc", f"wc -l {MARK} && sed -n '1,40p' {MARK}"])
    assert fill(template, "lib/b.py") == ["bash", "-lc", "wc -l lib/b.py && sed -n '1,40p' lib/b.py"]
    assert fill(json.dumps(f"cat {MARK}"), 'we"ird.py') == 'cat we"ird.py'  # JSON-escaped when filled
    assert template_of("cat src/a.pyc", ["src/a.py"]) is None  # a prefix of a longer word is no path
    assert template_of("src/a.py", ["src/a.py"]) is None  # the path alone: the plain sources offer it
    assert template_of({"cmd": "cat a.py"}, ["a.py"]) is None
    assert "sed -n" in describe(("template", template))


def session(i: int, run: int, name: str) -> Trace:
    """List a package, then page through one of its files, as a Codex-style agent does."""
    pkg = f"pkg{i}"
    listing = f"total 8\n-rw-r--r-- 1 u u 10 Dec 7 12:42 {name}\n-rw-r--r-- 1 u u 10 Dec 7 12:42 zz.py\n"

    def shell(cid: str, turn: int, line: str, output: str) -> ToolCall:
        return ToolCall(cid, turn, "shell", {"command": ["bash", "-lc", line], "workdir": "/w"},
                        json.dumps({"output": output, "metadata": {"exit_code": 0}}))

    return Trace(trace_id=f"t{i}-{run}", group=f"g{i}", source="codex", tools=[SHELL], events=[
        Message("user", f"Give me an overview of {pkg}."),
        shell(f"a{i}{run}", 0, f"ls -la {pkg}", listing),
        shell(f"b{i}{run}", 1, f"sed -n '1,60p' {pkg}/{name}", "x = 1\n"),
        Message("assistant", "Done."),
    ])


def test_the_pattern_pool_fills_a_mined_template_with_a_listed_path():
    train = [session(i, run, f"mod{i}.py") for i in range(6) for run in range(2)]
    maps = mine_value_maps(train)
    sources = maps.slots[("shell", "command")].sources
    template = ("template", json.dumps(["bash", "-lc", f"sed -n '1,60p' {MARK}"]))
    assert template in sources
    model = PatternPoolPredictor().fit(train)
    test = session(99, 0, "fresh_name.py")
    context = Context(test.events[:2], test.tools)
    top = model.predict(context, k=3)[0]
    assert top.tool == "shell"
    assert top.args["command"] == ["bash", "-lc", "sed -n '1,60p' pkg99/fresh_name.py"]
