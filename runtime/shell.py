"""Shell command lines, classified: may a coding agent's shell call run ahead of the agent?

Coding agents run most of their work through one shell tool (Claude Code's `Bash`, Codex's `shell` /
`exec_command`, Gemini CLI's `run_shell_command`), so a per-tool contract cannot say whether a call is a
read. This module reads the command line and puts it in one of three classes:

- `read_only`: every command of the line is on the read-only list with arguments that keep it so (`ls`,
  `cat`, `rg`, `grep`, `find` without `-exec`/`-delete`/`-fprint`, `git status|diff|log|show|branch`
  without writing options, `sed` without `-i` or a `w`/`e` command, ...), and nothing is written
  anywhere: the only output redirections allowed go to `/dev/null` or duplicate a descriptor (`2>&1`);
- `test_runner`: a test run (`pytest`, `python -m pytest`, `npm test`, `go test`, `cargo test`, ...),
  possibly in a pipeline with read-only commands. Idempotent but not side-effect-free (caches, build
  outputs, whatever the tests do): it may run ahead only where the user opted in for a sandboxed copy;
- `denied`: everything else, and anything this parser does not understand (default deny): redirection
  to a file, `sudo`, `rm`, package managers, network tools, interpreters, shell state (`cd` in a
  persistent shell, `export`, `source`), control flow, background jobs, `git -c`, unknown variables
  in command position.

How the line is read: a quote-aware pass (`_scan`) removes comments and line continuations, takes out
command substitutions (`$(...)`, backticks, `<(...)`), which are classified on their own, and here-doc
bodies; it hides quoted and escaped operator characters so that `grep ';' f` stays one command. Then
`shlex` (POSIX mode, `punctuation_chars`, newline as an operator) splits the line into words and
operators, and `_parse` into simple commands with their redirections, environment prefixes and
wrappers (`env`, `timeout`, `nice`, `time`, `xargs`, `sh -c`).
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Sequence
from dataclasses import dataclass

from toolcast.runtime.shell_commands import ASSIGN, SAFE_ENV, TEST_ENV, ShellClass, command_class

__all__ = ["ShellClass", "Verdict", "classify", "classify_argv"]


@dataclass(frozen=True)
class Verdict:
    kind: ShellClass
    reason: str = ""
    """Why a line is denied (the first thing found), or what made it a test run."""

    @property
    def read_only(self) -> bool:
        return self.kind is ShellClass.READ_ONLY


class _Deny(Exception):
    pass


_PUNCT = "();<>|&\n"
_PROTECT = {c: chr(0xE000 + i) for i, c in enumerate(_PUNCT)}
_RESTORE = {v: k for k, v in _PROTECT.items()}
_SUB = "\ue100"  # a word standing for a substitution's output
_SEPARATORS = frozenset((";", "&&", "||", "|", "|&", "\n", "(", ")"))
_HARMLESS_TARGETS = frozenset(("/dev/null", "/dev/stdout", "/dev/stderr"))
_WRITES = frozenset((">", ">>", ">|", "&>", "&>>"))
_DUPS = frozenset((">&", "<&"))
_MAX_DEPTH = 8


def classify(line: str, *, persistent_cwd: bool = False) -> Verdict:
    """The class of one command line. `persistent_cwd`: the agent's shell keeps its working directory
    between calls (Claude Code's Bash), so `cd` changes what later calls see and is denied."""
    try:
        kind = _classify(line, persistent_cwd, 0)
    except _Deny as e:
        return Verdict(ShellClass.DENIED, str(e))
    return Verdict(kind, "test run" if kind is ShellClass.TEST_RUNNER else "")


def classify_argv(argv: Sequence[str], *, persistent_cwd: bool = False) -> Verdict:
    """The class of an argv (Codex's `shell` tool: `["bash", "-lc", "<line>"]` or a bare command)."""
    if not argv or not all(isinstance(a, str) for a in argv):
        return Verdict(ShellClass.DENIED, "command is not a list of strings")
    return classify(shlex.join(argv), persistent_cwd=persistent_cwd)


def _classify(line: str, persistent_cwd: bool, depth: int) -> ShellClass:
    if depth > _MAX_DEPTH:
        raise _Deny("substitutions nested too deeply")
    if "\x00" in line or any(ch in line for ch in _RESTORE) or _SUB in line:
        raise _Deny("control characters in the line")
    text, subs = _scan(line)
    kinds = [_classify(s, persistent_cwd, depth + 1) for s in subs]
    lexer = shlex.shlex(text, posix=True, punctuation_chars=_PUNCT)
    lexer.whitespace, lexer.whitespace_split, lexer.commenters = " \t", True, ""  # bash: \r is a word char
    try:
        tokens = list(lexer)
    except ValueError as e:  # no closing quotation, ...
        raise _Deny(f"cannot parse: {e}") from None
    commands = _parse(tokens)
    if not commands:
        raise _Deny("no command")
    kinds += [_simple(words, persistent_cwd, depth) for words in commands]
    return ShellClass.TEST_RUNNER if ShellClass.TEST_RUNNER in kinds else ShellClass.READ_ONLY


# ---- pass 1: quotes, substitutions, here-docs, comments ----------------------------------------------


def _scan(line: str) -> tuple[str, list[str]]:
    """The line with substitutions replaced by a placeholder word, here-doc bodies and comments removed,
    and quoted operator characters hidden from the lexer; and the substitutions' command lines."""
    out: list[str] = []
    subs: list[str] = []
    heredocs: list[tuple[str, bool, bool]] = []  # (delimiter, body expands, strip tabs)
    i, n = 0, len(line)
    quote = ""
    while i < n:
        c = line[i]
        if quote == "'":
            if c == "'":
                quote = ""
            out.append(_PROTECT.get(c, c))
            i += 1
            continue
        if c == "\\":
            nxt = line[i + 1] if i + 1 < n else ""
            if nxt == "\n":
                i += 2
                continue
            out.append(_PROTECT[nxt] if nxt in _PROTECT else "\\" + nxt)
            i += 2
            continue
        if c == "$" and line.startswith("$((", i):
            raise _Deny("arithmetic expansion")
        if c == "$" and line.startswith("$(", i):
            end = _closing(line, i + 2)
            subs.append(line[i + 2:end])
            out.append(_SUB)
            i = end + 1
            continue
        if c == "$" and line.startswith("${", i):
            end = line.find("}", i)
            if end < 0 or any(t in line[i:end] for t in ("$(", "`")):
                raise _Deny("parameter expansion this parser does not follow")
            out.append("".join(_PROTECT.get(ch, ch) for ch in line[i:end + 1]))
            i = end + 1
            continue
        if c == "`":
            end = line.find("`", i + 1)
            if end < 0:
                raise _Deny("unclosed backtick")
            subs.append(line[i + 1:end])
            out.append(_SUB)
            i = end + 1
            continue
        if quote == '"':
            if c == '"':
                quote = ""
            out.append(_PROTECT.get(c, c))
            i += 1
            continue
        # outside quotes
        if c in "'\"":
            quote = c
            out.append(c)
            i += 1
            continue
        if c == "#" and (i == 0 or line[i - 1] in " \t\n;&|()"):
            while i < n and line[i] != "\n":
                i += 1
            continue
        if line.startswith(">(", i):
            raise _Deny("process substitution that writes")
        if line.startswith("<(", i):
            end = _closing(line, i + 2)
            subs.append(line[i + 2:end])
            out.append(_SUB)
            i = end + 1
            continue
        if line.startswith("<<", i) and not line.startswith("<<<", i):
            i = _heredoc_start(line, i, out, heredocs)
            continue
        if c == "\n" and heredocs:
            out.append("\n")
            i = _skip_bodies(line, i + 1, heredocs, subs)
            heredocs = []
            continue
        out.append(c)
        i += 1
    if quote:
        raise _Deny("unclosed quotation")
    if heredocs:
        raise _Deny("here-document without its body")
    return "".join(out), subs


def _closing(line: str, i: int) -> int:
    """Index of the `)` closing a `$(` / `<(` whose body starts at i (quote- and nesting-aware)."""
    depth, quote, n = 1, "", len(line)
    while i < n:
        c = line[i]
        if quote == "'":
            quote = "" if c == "'" else quote
        elif c == "\\":
            i += 1
        elif quote == '"':
            quote = "" if c == '"' else quote
        elif c in "'\"":
            quote = c
        elif c == "(":
            depth += 1
        elif c == ")":
            depth -= 1
            if depth == 0:
                return i
        i += 1
    raise _Deny("unclosed substitution")


_DELIM = re.compile(r"<<(-?)[ \t]*(?:'([^'\n]*)'|\"([^\"\n]*)\"|\\?([A-Za-z0-9_.\-]+))")


def _heredoc_start(line: str, i: int, out: list[str], heredocs: list[tuple[str, bool, bool]]) -> int:
    m = _DELIM.match(line, i)
    if m is None:
        raise _Deny("here-document this parser does not follow")
    quoted = m.group(4) is None or line[m.start(4) - 1] == "\\"  # 'EOF', "EOF" or \EOF: no expansion
    delim = next(g for g in (m.group(2), m.group(3), m.group(4)) if g is not None)
    heredocs.append((delim, not quoted, m.group(1) == "-"))
    out.append(" << heredoc ")
    return m.end()


def _skip_bodies(line: str, i: int, heredocs: list[tuple[str, bool, bool]], subs: list[str]) -> int:
    lines = line[i:].split("\n")
    used = 0
    for delim, expands, strip in heredocs:
        while True:
            if used >= len(lines):
                raise _Deny(f"here-document not closed by {delim!r}")
            body = lines[used]
            used += 1
            if (body.lstrip("\t") if strip else body) == delim:
                break
            if expands and ("$(" in body or "`" in body):
                raise _Deny("command substitution inside a here-document")
    return i + sum(len(x) + 1 for x in lines[:used])


# ---- pass 2: operators and simple commands -----------------------------------------------------------


def _restore(word: str) -> str:
    return "".join(_RESTORE.get(c, c) for c in word)


def _parse(tokens: list[str]) -> list[list[str]]:
    """Simple commands (their words, redirections checked and removed); raises _Deny on what it cannot
    follow or what writes."""
    commands: list[list[str]] = []
    words: list[str] = []
    depth = 0
    i = 0
    while i < len(tokens):
        tok = tokens[i]
        if tok and set(tok) <= set(_PUNCT):
            if tok in _SEPARATORS:
                if tok == "(":
                    if words:
                        raise _Deny("function definition or misplaced '('")
                    depth += 1
                elif tok == ")":
                    depth -= 1
                    if depth < 0:
                        raise _Deny("unbalanced ')'")
                if words:
                    commands.append(words)
                    words = []
                i += 1
                continue
            if tok == "&":
                raise _Deny("background job")
            target = _restore(tokens[i + 1]) if i + 1 < len(tokens) else ""
            if i + 1 >= len(tokens) or set(tokens[i + 1]) <= set(_PUNCT):
                raise _Deny(f"redirection {tok!r} without a target")
            _redirection(tok, target)
            if words and words[-1].isdigit() and tok not in ("<<", "<<<"):
                words.pop()  # `2>` parsed as "2" ">": the descriptor is not an argument (a safe reading)
            i += 2
            continue
        words.append(_restore(tok))
        i += 1
    if depth != 0:
        raise _Deny("unbalanced '('")
    if words:
        commands.append(words)
    return commands


def _redirection(op: str, target: str) -> None:
    if op in _WRITES:
        if target not in _HARMLESS_TARGETS:
            raise _Deny(f"writes to a file ({op} {target})")
    elif op in _DUPS:
        if not (target.isdigit() or target == "-") and target not in _HARMLESS_TARGETS:
            raise _Deny(f"writes to a file ({op} {target})")
    elif op not in ("<", "<<", "<<<"):
        raise _Deny(f"operator {op!r} this parser does not follow")


def _simple(words: list[str], persistent_cwd: bool, depth: int) -> ShellClass:
    """One simple command: environment prefixes, then the command and its arguments."""
    test_env = False
    while words and ASSIGN.match(words[0]):
        name = words[0].split("=", 1)[0]
        allowed = SAFE_ENV.get(name, ())
        if name in TEST_ENV:
            test_env = True
        elif not name.startswith("LC_") and allowed is not None and words[0].split("=", 1)[1] not in allowed:
            raise _Deny(f"environment variable {name} may change what the command runs")
        words = words[1:]
    if not words:
        raise _Deny("variable assignment")
    kind = command_class(words, persistent_cwd, lambda line: _classify(line, persistent_cwd, depth + 1),
                         _Deny, _SUB)
    if test_env and kind is not ShellClass.TEST_RUNNER:
        raise _Deny(f"environment variable {words[0]} outside a test run")
    return kind
