"""The `listed_path` extractor: paths in coding tools' listings, in the forms a next call passes them.

Torch-free (the base install runs it too). The session pool's parity on coding sessions:
`test_session_candidates.py`."""

from __future__ import annotations

import json

from toolcast.data import Message, ToolCall
from toolcast.predictor.features.path_kinds import MAX_LISTED_LINES, listed_path

WORKDIR = "/home/u/repo"


def codex(command: str, output: str) -> ToolCall:
    return ToolCall("c", 0, "shell", {"command": ["bash", "-lc", command], "workdir": WORKDIR},
                    json.dumps({"output": output, "metadata": {"exit_code": 0}}))


def values(event) -> list:
    return [v for _p, v in listed_path(event)]


def test_ls_names_are_joined_with_the_listed_directory_relative_and_absolute():
    out = values(codex("ls -la serving", "total 8\ndrwxr-xr-x 2 u u 4096 Dec 7 12:42 .\n"
                                         "-rw-r--r-- 1 u u  804 Dec 7 12:42 __init__.py\n"
                                         "lrwxrwxrwx 1 u u    6 Dec 7 12:42 link -> app.py\n"))
    assert out == ["serving/__init__.py", f"{WORKDIR}/serving/__init__.py", "serving/link",
                   f"{WORKDIR}/serving/link"]
    plain = values(ToolCall("c", 0, "Bash", {"command": "cd src && ls"}, "Makefile\nmain.c\n"))
    assert plain == ["src/Makefile", "src/main.c"]  # a listing's bare names count whatever they look like
    hits = ToolCall("c", 0, "Bash", {"command": "cd lib && grep -rn x ."}, "./a.py:3:x = 1\n")
    assert values(hits) == ["lib/a.py"]


def test_grep_hits_give_their_path_without_the_line_prefix():
    out = values(codex("grep -rn 'def mutate' .", "./runtime/contracts.py:92:    def mutate_keys(self):\n"
                                                   "./tests/conftest.py-68-def mutate():\n"))
    assert out[:3] == ["./runtime/contracts.py", "runtime/contracts.py", f"{WORKDIR}/runtime/contracts.py"]
    assert "tests/conftest.py" in out
    claude = ToolCall("c", 0, "Grep", {"pattern": "x", "path": WORKDIR, "output_mode": "content"},
                      f"{WORKDIR}/tests/test_a.py:142:def test_x():\n")
    assert values(claude) == [f"{WORKDIR}/tests/test_a.py", "tests/test_a.py"]


def test_trees_globs_and_git_rows():
    tree = ToolCall("c", 0, "LS", {"path": WORKDIR}, f"- {WORKDIR}/\n  - data/\n    - io.py\n  - setup.cfg\n")
    assert values(tree) == [WORKDIR, f"{WORKDIR}/data", "data", f"{WORKDIR}/data/io.py", "data/io.py",
                            f"{WORKDIR}/setup.cfg", "setup.cfg"]
    glob = ToolCall("c", 0, "Glob", {"pattern": "**/*.py"}, f"{WORKDIR}/a.py\n{WORKDIR}/b/c.py")
    assert values(glob) == [f"{WORKDIR}/a.py", f"{WORKDIR}/b/c.py"]
    stat = ToolCall("c", 0, "Bash", {"command": "git diff --stat"},
                    " tests/a.py | 2 +-\n 1 file changed, 1 insertion(+), 1 deletion(-)\n")
    assert values(stat) == ["tests/a.py"]
    status = ToolCall("c", 0, "Bash", {"command": "git status --short"}, " M src/x.rs\n?? notes.md\n")
    assert values(status) == ["src/x.rs", "notes.md"]


def test_what_is_not_a_listing_gives_nothing():
    assert values(Message("user", "see docs/a.md")) == []
    assert values(ToolCall("c", 0, "get_user", {"id": "u1"}, "ZFA04Y")) == []  # an id, not a path
    assert values(ToolCall("c", 0, "get_user", {}, json.dumps({"name": "a.txt", "n": 2}))) == []
    assert values(ToolCall("c", 0, "clock", {}, "Time:12:30:00 - Flight 12\n- Paris\nfatima@x.com")) == []
    assert values(ToolCall("c", 0, "Bash", {"command": "echo 'unbalanced"}, "")) == []


def test_a_huge_listing_is_read_only_up_to_the_line_cap():
    output = "\n".join(f"src/f{i}.py" for i in range(10_000))
    found = values(ToolCall("c", 0, "Bash", {"command": "find src"}, output))
    assert len(found) == MAX_LISTED_LINES and found[-1] == f"src/f{MAX_LISTED_LINES - 1}.py"

