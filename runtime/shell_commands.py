"""Which commands, with which arguments, are reads: the tables behind `shell.classify`.

A command not named here is denied. A command named here is read-only with any arguments (`PLAIN`) or
after its checker found no writing option (`_CHECKS`); wrappers (`env`, `timeout`, `xargs`, `sh -c`,
...) are judged by the command they run. Test runners and linters (idempotent, write only caches and
build outputs) are their own class, which a user enables for a sandboxed copy.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from enum import Enum

from toolcast.runtime.shell_git import abbreviates, git_check
from toolcast.runtime.shell_sed_awk import awk_check, sed_check


class ShellClass(str, Enum):
    READ_ONLY = "read_only"
    TEST_RUNNER = "test_runner"
    DENIED = "denied"


RO, TEST = ShellClass.READ_ONLY, ShellClass.TEST_RUNNER

SAFE_ENV: dict[str, frozenset[str] | None] = {
    # name -> the values allowed (None: any). A pager or editor variable names a program to run.
    "LANG": None, "LANGUAGE": None, "TERM": None, "NO_COLOR": None, "CLICOLOR": None, "FORCE_COLOR": None,
    "COLUMNS": None, "LINES": None, "TZ": None, "GREP_COLOR": None, "GREP_COLORS": None,
    "PAGER": frozenset(("cat", "")), "GIT_PAGER": frozenset(("cat", "")),
}
TEST_ENV = frozenset(("PYTHONPATH", "CI", "RUST_BACKTRACE", "NODE_ENV", "PYTHONDONTWRITEBYTECODE",
                      "PYTEST_ADDOPTS", "GOFLAGS", "CARGO_TERM_COLOR", "DEBUG"))

PLAIN = frozenset((
    "cat", "head", "wc", "pwd", "echo", "printf", "true", "false", ":", "which", "whereis", "whoami", "id",
    "uname", "basename", "dirname", "realpath", "readlink", "nl", "cut", "tr", "column", "comm", "cmp",
    "diff", "stat", "du", "df", "grep", "egrep", "fgrep", "ag", "ack", "strings", "od", "hexdump", "md5sum",
    "sha1sum", "sha256sum", "sha512sum", "cksum", "rev", "tac", "paste", "join", "fold", "fmt", "expand",
    "unexpand", "seq", "test", "[", "ls", "ps", "printenv", "jq", "type", "sleep", "nproc", "arch",
    "groups", "locale", "zcat",
))
_BIN_DIRS = ("/bin/", "/usr/bin/", "/usr/local/bin/", "/opt/homebrew/bin/")
_SHELLS = frozenset(("sh", "bash", "zsh", "dash"))
_PYTHON = re.compile(r"^python(3(\.\d+)?)?$")
_VERSION_ARGS = (["--version"], ["-V"], ["version"], ["-v"])
_VERSIONED = frozenset(("node", "npm", "yarn", "pnpm", "cargo", "rustc", "go", "pip", "pip3", "uv", "ruff",
                        "java", "gcc", "make", "git", "pytest", "tsc", "deno", "bun"))

ASSIGN = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")
"""A `NAME=value` word: an environment prefix of a command (or a bare assignment)."""
Deny = Callable[[str], Exception]
Recurse = Callable[[str], ShellClass]


def command_class(words: list[str], persistent_cwd: bool, recurse: Recurse, deny: Deny,
                  sub: str) -> ShellClass:
    """The class of one simple command (`words[0]` the command); raises `deny(reason)` if denied."""
    name = words[0]
    for d in _BIN_DIRS:
        if name.startswith(d) and "/" not in name[len(d):]:
            name = name[len(d):]
    if sub in name or "$" in name:
        raise deny("command name from a substitution or variable")
    args = words[1:]
    inner = _Inner(persistent_cwd, recurse, deny, sub)
    if name in _VERSIONED and args in _VERSION_ARGS:
        return RO
    if name in PLAIN:
        return RO
    check = _CHECKS.get(name)
    if check is not None:
        return check(args, inner)
    if _PYTHON.match(name):
        return _python(args, inner)
    if name in _SHELLS:
        return _shell(args, inner)
    raise deny(f"{name!r} is not a known read-only command")


class _Inner:
    """What a checker needs: deny, and a way to judge the command a wrapper runs."""

    def __init__(self, persistent_cwd: bool, recurse: Recurse, deny: Deny, sub: str) -> None:
        self.persistent_cwd, self.recurse, self.deny, self.sub = persistent_cwd, recurse, deny, sub

    def words(self, words: list[str]) -> ShellClass:
        if not words:
            raise self.deny("wrapper without a command")
        return command_class(words, self.persistent_cwd, self.recurse, self.deny, self.sub)


def _denied_options(*names: str, short: str = "") -> Callable[[list[str], _Inner], ShellClass]:
    """A read-only command unless an option in `names` (long, `--x=v` or an abbreviation too) or a
    short-option letter in `short` (also inside a cluster such as `-uo`) is given."""

    def check(args: list[str], inner: _Inner) -> ShellClass:
        for a in args:
            if a == "--":
                break
            if abbreviates(a, names) or (short and a.startswith("-") and not a.startswith("--")
                                         and any(c in short for c in a[1:])):
                raise inner.deny(f"option {a} writes or runs a program")
        return RO

    return check


def _operands_at_most(n: int, *denied: str) -> Callable[[list[str], _Inner], ShellClass]:
    """Read-only with at most `n` operands (the next one is an output file: uniq, xxd)."""

    def check(args: list[str], inner: _Inner) -> ShellClass:
        if any(a in denied for a in args):
            raise inner.deny(f"option {next(a for a in args if a in denied)} writes")
        if len([a for a in args if not a.startswith("-") or a == "-"]) > n:
            raise inner.deny("an operand names an output file")
        return RO

    return check


def _tail(args, inner):
    for a in args:
        if a in ("-f", "-F") or abbreviates(a, ("--follow", "--retry")) or (
                a.startswith("-") and not a.startswith("--") and ("f" in a[1:] or "F" in a[1:])):
            raise inner.deny("tail -f never ends")
    return RO


def _date(args, inner):
    for a in args:
        if a == "-s" or abbreviates(a, ("--set",)):
            raise inner.deny("date --set changes the clock")
        if not a.startswith(("-", "+")):
            raise inner.deny("a date operand sets the clock (BSD date)")
    return RO


def _tee(args, inner):
    if any(a not in ("-a", "--append", "-i", "/dev/null") for a in args):
        raise inner.deny("tee writes to a file")
    return RO


def _sed(args, inner):
    sed_check(args, inner.deny)
    return RO


def _awk(args, inner):
    awk_check(args, inner.deny)
    return RO


_FIND_DENIED = frozenset(("-exec", "-execdir", "-ok", "-okdir", "-delete", "-fprint", "-fprint0", "-fprintf",
                          "-fls"))


def _find(args, inner):
    for a in args:
        if a in _FIND_DENIED:
            raise inner.deny(f"find {a} runs commands or writes")
    return RO


def _cd(args, inner):
    if inner.persistent_cwd:
        raise inner.deny("cd changes the working directory of the agent's shell")
    return RO


def _command(args, inner):
    if args and args[0] in ("-v", "-V"):
        return RO
    return inner.words([a for a in args if a != "-p"])


def _env(args, inner):
    i = 0
    while i < len(args):
        a = args[i]
        if a in ("-u", "--unset"):
            i += 2
        elif a in ("-i", "--ignore-environment", "-0", "--null", "-"):
            i += 1
        elif a.startswith("-"):
            raise inner.deny(f"env option {a} this parser does not follow")
        elif ASSIGN.match(a):
            name, value = a.split("=", 1)
            allowed = SAFE_ENV.get(name, ())
            if allowed is not None and value not in allowed and not name.startswith("LC_"):
                raise inner.deny(f"environment variable {name} may change what the command runs")
            i += 1
        else:
            break
    return RO if i >= len(args) else inner.words(args[i:])


def _skip_then(with_value: tuple[str, ...], flags: tuple[str, ...], positional: int = 0):
    """A wrapper (`timeout`, `nice`, `stdbuf`, `time`): skip its options and `positional` operands, then
    judge the command it runs."""

    def check(args, inner):
        i, left = 0, positional
        while i < len(args):
            a = args[i]
            if a in with_value:
                i += 2
            elif a in flags or (a.startswith("-") and a.split("=", 1)[0] in with_value + flags) \
                    or (a.startswith("-") and len(a) > 2 and a[:2] in with_value):
                i += 1
            elif left > 0:
                left, i = left - 1, i + 1
            else:
                break
        return inner.words(args[i:])

    return check


_XARGS_VALUE = ("-I", "-n", "-P", "-L", "-s", "-d", "-E", "-a", "--arg-file", "--max-args", "--max-procs",
                "--delimiter", "--replace", "--max-lines")
_XARGS_FLAGS = ("-0", "-r", "-t", "-x", "--null", "--no-run-if-empty", "--verbose", "--exit")


def _xargs(args, inner):
    i = 0
    while i < len(args):
        a = args[i]
        if a in ("-p", "-o") or abbreviates(a, ("--interactive", "--open-tty")):
            raise inner.deny("xargs asks on a terminal")
        if a in _XARGS_VALUE:
            i += 2
        elif a in _XARGS_FLAGS or a.startswith(("--", "-i", "-n", "-P", "-L", "-I", "-d", "-s")):
            i += 1
        else:
            break
    return RO if i >= len(args) else inner.words(args[i:])


def _shell(args, inner):
    i, has_c = 0, False
    while i < len(args) and args[i].startswith(("-", "+")) and args[i] not in ("-", "--"):
        a = args[i]
        if a in ("-o", "+o"):
            i += 2
            continue
        if set(a[1:]) - set("lecuxvo"):
            raise inner.deny(f"shell option {a} this parser does not follow")
        has_c |= "c" in a
        i += 1
    if not has_c or i >= len(args):
        raise inner.deny("a shell running a script file or reading commands from stdin")
    return inner.recurse(args[i])


def _python(args, inner):
    if args in _VERSION_ARGS:
        return RO
    flags = [a for a in args[:2] if a.startswith("-") and a != "-m"]
    if "-m" in args[:3] and not flags:
        module = args[args.index("-m") + 1] if args.index("-m") + 1 < len(args) else ""
        if module in ("pytest", "unittest", "mypy"):
            return TEST
    raise inner.deny("python runs arbitrary code")


def _tests(*subcommands: str, prefix: tuple[str, ...] = ()):
    """`npm test`, `go test`, `cargo test`, ...: a test run (or a check) when the subcommand is one of
    `subcommands` (or, after `run`, starts with one of `prefix`)."""

    def check(args, inner):
        if args and args[0] in subcommands:
            return TEST
        if len(args) > 1 and args[0] == "run" and args[1].startswith(prefix or subcommands):
            return TEST
        raise inner.deny("a build or package-manager command")

    return check


def _no_fix(kind: ShellClass, *fix: str):
    def check(args, inner):
        if any(a.split("=", 1)[0] in fix for a in args):
            raise inner.deny("a linter that rewrites files")
        return kind

    return check


def _ruff(args, inner):
    if not args or args[0] not in ("check",) or any(a.startswith(("--fix", "--unsafe-fixes", "--add-noqa",
                                                                    "--watch")) for a in args):
        raise inner.deny("ruff that formats or fixes files")
    return TEST


def _tsc(args, inner):
    if "--noEmit" not in args or any(a in ("-w", "--watch", "-b", "--build") for a in args):
        raise inner.deny("tsc that emits files")
    return TEST


_CHECKS: dict[str, Callable[[list[str], _Inner], ShellClass]] = {
    "tail": _tail,
    "date": _date,
    "tee": _tee,
    "sed": _sed,
    "awk": _awk, "gawk": _awk, "mawk": _awk,
    "find": _find,
    "cd": _cd, "pushd": _cd, "popd": _cd,
    "command": _command,
    "env": _env,
    "xargs": _xargs,
    "timeout": _skip_then(("-s", "--signal", "-k", "--kill-after"), ("--preserve-status", "--foreground",
                                                                       "-v", "--verbose"), positional=1),
    "nice": _skip_then(("-n", "--adjustment"), ()),
    "time": _skip_then((), ("-p",)),
    "stdbuf": _skip_then(("-i", "-o", "-e"), ()),
    "sort": _denied_options("-o", "--output", "--compress-program", short="o"),
    "tree": _denied_options("-o", short="o"),
    "file": _denied_options("-C", "--compile"),
    "rg": _denied_options("--pre"),
    "fd": _denied_options("-x", "--exec", "-X", "--exec-batch"),
    "fdfind": _denied_options("-x", "--exec", "-X", "--exec-batch"),
    "base64": _denied_options("-o", "--output"),
    "hostname": _operands_at_most(0),
    "uniq": _operands_at_most(1),
    "xxd": _operands_at_most(1, "-r", "-revert"),
    "pytest": _no_fix(TEST), "py.test": _no_fix(TEST),
    "npm": _tests("test", "t", prefix=("test",)),
    "yarn": _tests("test", prefix=("test",)),
    "pnpm": _tests("test", prefix=("test",)),
    "bun": _tests("test"),
    "go": _tests("test", "vet"),
    "cargo": _tests("test", "check", "clippy"),
    "ruff": _ruff,
    "mypy": _no_fix(TEST), "pyright": _no_fix(TEST), "flake8": _no_fix(TEST),
    "eslint": _no_fix(TEST, "--fix", "--fix-dry-run", "-o", "--output-file"),
    "tsc": _tsc,
}



def _git(args, inner):
    git_check(args, inner.deny)
    return RO


_CHECKS["git"] = _git
