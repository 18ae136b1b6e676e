"""The `listed_path` extractor: file paths a coding tool's output lists, in the form a next call passes.

A coding agent reads what it has just listed or found: `Read` after `LS`, `sed -n` after `grep -rn`. The
path it passes is rarely a span of the output: `LS` prints a tree of bare names under its root, `ls dir`
prints names without `dir/`, `grep -rn` prefixes each hit with `path:line:`, `git diff --stat` pads a
path before ` | 3 +-`. This extractor reads one call (its arguments and its output) and proposes each
listed path joined with the directory the call names, in both the relative and the absolute form when the
call says where it ran:

- the listed entries: a tree (`- /root/` then indented `- name`), `ls -l` rows (the name),
  `path:line:` / `path:line-` hits and `path-line-` context lines (the path), `git diff --stat` rows
  (` path | n`), `git status --short` rows (`?? path`), and bare one-token lines that look like a path
  (a `/` or a file extension); a bare line of an `ls`/`LS`-like call counts whatever it looks like (it
  is a name in that directory);
- the directory a listing's names are in: the call's `path` argument (Claude Code's LS/Glob/Grep) or the
  directory operand of an `ls`/`tree` command line (under a `cd dir &&` prefix's directory);
- the working directory: a `workdir`/`cwd` argument (Codex's shell) or an absolute `cd` prefix, else the
  directory a search ran in (a `path` argument); a relative path is also proposed joined with it, an
  absolute one under it also relative to it, `./x` also as `x`.

The text read is an output that is not JSON, or the multi-line string leaves of a JSON output (Codex's
`{"output": "..."}`), at most `MAX_TEXT` characters and `MAX_LISTED_LINES` lines in all, each value at
most `MAX_PATH` characters: a 100,000-file `find` is not 100,000 arguments. Paths are `<field>[i:j]`
spans of the listed entry as the other text extractors write them. Nothing here reads the file system.
"""

from __future__ import annotations

import itertools
import posixpath
import re
import shlex
from collections.abc import Iterator
from typing import Any

from toolcast.data import jsonpaths
from toolcast.data.schema import Event, ToolCall
from toolcast.predictor.features.extractor_kinds import MAX_LEAVES, MAX_TEXT, Found, _output_json

MAX_LISTED_LINES = 400
"""Lines of one call's output read for listed paths (all its text fields together)."""
MAX_PATH = 512
"""A longer token is not a path an agent passes on."""

_SHELLS = {"bash", "sh", "zsh", "dash"}
_LISTERS = {"ls", "tree", "LS", "list_dir", "list_directory", "list_files"}
"""Programs (command lines) and tools (by name) whose bare output lines are names in a directory."""
_TREE = re.compile(r"^( *)- (\S.*?)\s*$")
_LS_LONG = re.compile(r"^[-dlbcps][-rwxsStT]{9}[.+@]?\s+\d+\s+.*?\s(\S+(?: -> \S+)?)\s*$")
_HIT = re.compile(r"^([^\s:]+?):\d+[:-]")
_CONTEXT_LINE = re.compile(r"^([^\s:]+?\.[A-Za-z]\w*)-\d+-")  # `grep -C` context: `path-68-text`
_STAT = re.compile(r"^\s*(\S+)\s+\|\s+(?:\d+|Bin)")
_STATUS = re.compile(r"^[ MADRCU?!]{2} (\S+)$")
_TOKEN = re.compile(r"^[\w.@+~/-]+$")
_EXT = re.compile(r"\.[A-Za-z][A-Za-z0-9]{0,7}$")


def _command_words(args: dict[str, Any]) -> list[str] | None:
    """The words of a shell call's command line (`command` as a string or an argv list, `bash -lc`
    unwrapped); None when there is none or it does not parse."""
    cmd = args.get("command", args.get("cmd"))
    if isinstance(cmd, list) and cmd and all(isinstance(w, str) for w in cmd):
        if len(cmd) >= 3 and posixpath.basename(cmd[0]) in _SHELLS and cmd[1].startswith("-") \
                and "c" in cmd[1]:
            cmd = cmd[2]
        else:
            return list(cmd)
    if not isinstance(cmd, str) or len(cmd) > MAX_TEXT:
        return None
    try:
        return shlex.split(cmd)
    except ValueError:
        return None


def _where(event: ToolCall) -> tuple[str | None, str | None, bool, str | None]:
    """(directory the listed names are in, working directory, is a listing call, the relative directory
    a `cd dir &&` prefix moved to when the working directory is not known) of one call."""
    args = event.args if isinstance(event.args, dict) else {}
    workdir = next((v for k in ("workdir", "cwd") if isinstance(v := args.get(k), str) and v), None)
    base = args.get("path") if isinstance(args.get("path"), str) and args.get("path") else None
    lister = event.tool in _LISTERS
    words = _command_words(args)
    prefix = None
    if words:
        if len(words) >= 3 and words[0] == "cd" and words[2] in ("&&", ";"):
            if workdir or words[1].startswith("/"):
                workdir = posixpath.normpath(posixpath.join(workdir or "", words[1]))
            else:
                prefix = posixpath.normpath(words[1])
            words = words[3:]
        stop = next((i for i, w in enumerate(words) if w in ("|", "&&", "||", ";")), len(words))
        first = words[:stop]
        if first and first[0] in _LISTERS:
            lister = True
            operands = [w for w in first[1:] if not w.startswith("-")]
            base = operands[0] if len(operands) == 1 else "." if not operands else None
            if base is not None and prefix:
                base = posixpath.normpath(posixpath.join(prefix, base))
    if workdir is None and base is not None and base.startswith("/"):
        workdir = base  # the directory a search ran in: relative hits are relative to it
    return base, workdir, lister, prefix


def _texts(event: ToolCall) -> Iterator[tuple[str, str]]:
    """(field path, text) of an output's listing text: the output itself when it is not JSON, else its
    multi-line string leaves (and a one-line leaf under an `output`/`stdout` key)."""
    parsed = _output_json(event)
    if isinstance(parsed, dict | list):
        for path, value in itertools.islice(jsonpaths.leaves(parsed, with_keys=False), MAX_LEAVES):
            if isinstance(value, str) and ("\n" in value or path in ("output", "stdout")):
                yield path, value[:MAX_TEXT]
    elif isinstance(parsed, str):
        yield "output", parsed[:MAX_TEXT]
    elif event.output:
        yield "output", event.output[:MAX_TEXT]


def _forms(path: str, workdir: str | None) -> list[str]:
    """A listed path and its other forms: without `./`, absolute under the working directory, relative
    to it."""
    out = [path]
    if path.startswith("./") and len(path) > 2:
        path = path[2:]
        out.append(path)
    if workdir:
        if path.startswith("/"):
            root = workdir.rstrip("/") + "/"
            if path.startswith(root) and len(path) > len(root):
                out.append(path[len(root):])
        elif not path.startswith("~"):
            out.append(posixpath.normpath(posixpath.join(workdir, path)))
    return [p for p in dict.fromkeys(out) if len(p) <= MAX_PATH]


def _pathlike(token: str) -> bool:
    return bool(_TOKEN.match(token)) and "@" not in token and ("/" in token or bool(_EXT.search(token)))


def _entry(line: str, lister: bool) -> tuple[int, str, int] | None:
    """(start, path as written, tree depth or -1) of the one path a listing line names; None for other
    lines. Outside a listing call, only what looks like a path (a `/` or a file extension) counts."""
    if m := _TREE.match(line):
        name = m.group(2)
        if _TOKEN.match(name) and (lister or _pathlike(name.rstrip("/") or name)):
            return m.start(2), name, len(m.group(1)) // 2
        return None
    for pattern in (_HIT, _CONTEXT_LINE, _STAT, _STATUS, _LS_LONG):
        if m := pattern.match(line):
            name = m.group(1).split(" -> ")[0]
            if lister or _pathlike(name.rstrip("/")):
                return m.start(1), name, -1
            return None
    token = line.strip()
    if token and (_pathlike(token.rstrip("/")) or (lister and _TOKEN.match(token) and "@" not in token)):
        return line.index(token), token, -1
    return None


def listed_path(event: Event) -> Found:
    """File paths a coding tool's output lists (LS/ls/Glob/find/grep hits/git stat), joined with the
    call's directory, relative and absolute."""
    if not isinstance(event, ToolCall) or not event.output:
        return []
    base, workdir, lister, prefix = _where(event)
    out: Found = []
    budget = MAX_LISTED_LINES
    for field, text in _texts(event):
        stack: list[str] = []  # a tree's directories, by depth
        pos = 0
        for line in text.split("\n")[:budget]:
            budget -= 1
            start = pos
            pos += len(line) + 1
            found = _entry(line, lister)
            if found is None:
                continue
            i, name, depth = found
            if name in (".", "..", "./") or len(name) > MAX_PATH:
                continue
            if depth >= 0:  # a tree: the root is absolute (or relative to the call), names under it
                del stack[depth:]
                parent = stack[-1] if stack else (base or "")
                full = posixpath.join(parent, name) if depth or not name.startswith("/") else name
                stack.append(full)
                path = full.rstrip("/") or "/"
            else:
                name = name.rstrip("/") or name
                if lister and base and base != ".":
                    path = posixpath.join(base, name)
                elif prefix and not lister and not name.startswith(("/", "~")):
                    path = posixpath.normpath(posixpath.join(prefix, name))  # `cd dir && grep -rn ...`
                else:
                    path = name
            span = f"{field}[{start + i}:{start + i + len(name)}]"
            out.extend((span, value) for value in _forms(path, workdir))
        if budget <= 0:
            break
    return out
