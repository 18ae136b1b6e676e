"""`git` command lines that only read: the subcommands and options `shell.classify` lets run ahead.

`git -c k=v` is denied: a configuration value can name a program git runs (`core.pager`,
`core.fsmonitor`, `diff.external`, an alias). So are options that write a file (`--output`) or run one
(`--ext-diff`, `--open-files-in-pager`), and every subcommand that changes the repository, the index,
the working tree or a remote (commit, add, checkout, reset, fetch, push, ...). `branch`, `tag`, `stash`,
`remote`, `config`, `worktree`, `reflog` read only in their listing forms.
"""

from __future__ import annotations

from collections.abc import Callable


def abbreviates(arg: str, names: tuple[str, ...]) -> bool:
    """`arg` is one of the long options `names` or an unambiguous prefix of one (git's parse-options
    takes `--out=f` for `--output=f`); `--x=value` counts by its name."""
    head = arg.split("=", 1)[0]
    return head in names or (head.startswith("--") and len(head) > 2
                             and any(n.startswith("--") and n.startswith(head) for n in names))

_GLOBAL_VALUE = ("-C", "--git-dir", "--work-tree", "--namespace")
_GLOBAL_FLAGS = ("--no-pager", "-P", "--no-optional-locks", "--literal-pathspecs", "--bare",
                 "--no-replace-objects", "--glob-pathspecs", "--noglob-pathspecs", "--icase-pathspecs", "-p",
                 "--paginate")
READ = frozenset((
    "status", "log", "show", "diff", "blame", "annotate", "shortlog", "describe", "rev-parse", "ls-files",
    "ls-tree", "cat-file", "grep", "rev-list", "merge-base", "name-rev", "show-ref", "for-each-ref",
    "whatchanged", "count-objects", "check-ignore", "check-attr", "var", "version", "diff-tree",
    "diff-files", "diff-index", "cherry", "range-diff", "show-branch",
))
_ALWAYS_DENIED = ("--output", "--ext-diff", "-O", "--open-files-in-pager", "--exec", "--upload-pack")
_BRANCH_VALUE = ("--contains", "--no-contains", "--merged", "--no-merged", "--points-at", "--sort",
                 "--format", "--color", "--column")
_BRANCH_READ_FLAGS = ("-a", "--all", "-r", "--remotes", "-v", "-vv", "--verbose", "--show-current",
                      "--no-color", "-i", "--ignore-case", "--no-column", "-q", "--quiet", "--abbrev")
_TAG_READ_FLAGS = ("-n", "--no-color", "-i", "--ignore-case", "--no-column", "-v", "--verify")


def git_check(args: list[str], deny: Callable[[str], Exception]) -> None:
    """Return when `git <args>` only reads; raise `deny(reason)` otherwise."""
    i = 0
    while i < len(args) and args[i].startswith("-"):
        a = args[i]
        if a == "-c" or a.startswith(("-c", "--config-env", "--exec-path")):
            raise deny("git -c can make git run a program (core.pager, aliases, ...)")
        if a in _GLOBAL_VALUE:
            i += 2
        elif a in _GLOBAL_FLAGS or a.split("=", 1)[0] in _GLOBAL_VALUE:
            i += 1
        else:
            raise deny(f"git option {a} this parser does not follow")
    if i >= len(args):
        raise deny("git without a subcommand")
    sub, rest = args[i], args[i + 1:]
    for a in rest:
        if a == "--":
            break
        if abbreviates(a, _ALWAYS_DENIED) or (a.startswith("-O") and sub == "grep"):
            raise deny(f"git {sub} {a} writes a file or runs a program")
    if sub in READ:
        return
    check = _LISTING.get(sub)
    if check is None:
        raise deny(f"git {sub} changes the repository, the working tree or a remote")
    check(rest, deny)


def _listing(value_opts: tuple[str, ...], read_flags: tuple[str, ...], list_flags: tuple[str, ...]):
    """`branch` / `tag`: read-only when every option is a listing option and a name is given only
    after a list flag (a bare name creates a branch or tag)."""

    def check(rest: list[str], deny) -> None:
        listing = any(a in list_flags for a in rest)
        i = 0
        while i < len(rest):
            a = rest[i]
            if a in value_opts:
                i += 2
                continue
            if a.split("=", 1)[0] in value_opts or a in read_flags + list_flags or a.startswith("--abbrev"):
                i += 1
                continue
            if a.startswith("-"):
                raise deny(f"git option {a} changes branches or tags")
            if not listing:
                raise deny("a bare name creates a branch or tag")
            i += 1

    return check


def _subcommands(*allowed: str, bare: bool = True, flags: tuple[str, ...] = ()):
    def check(rest: list[str], deny) -> None:
        if not rest and bare:
            return
        if rest and rest[0] in allowed:
            return
        if rest and all(a in flags for a in rest):
            return
        raise deny(f"git {' '.join(rest[:1]) or 'command'} changes the repository")

    return check


def _config(rest: list[str], deny) -> None:
    writes = ("-e", "set", "unset", "edit", "rename-section", "remove-section")
    reads = ("--get", "--get-all", "--get-regexp", "--list", "-l", "--get-urlmatch", "list", "get")
    flags = ("--global", "--local", "--system", "--show-origin", "--show-scope", "--name-only", "--null",
             "-z", "--bool", "--int", "--path", "--type", "--default", "--includes", "--no-includes")
    if any(a in writes or (a.startswith("-") and a.split("=", 1)[0] not in reads + flags) for a in rest):
        raise deny("git config that writes (or an option this parser does not follow)")
    operands = [a for a in rest if not a.startswith("-")]
    if any(a in reads for a in rest) or len(operands) <= 1:
        return
    raise deny("git config with a value sets it")


_LISTING = {
    "branch": _listing(_BRANCH_VALUE, _BRANCH_READ_FLAGS, ("-l", "--list")),
    "tag": _listing(_BRANCH_VALUE, _TAG_READ_FLAGS, ("-l", "--list")),
    "stash": _subcommands("list", "show", bare=False),
    "remote": _subcommands("get-url", flags=("-v", "--verbose")),
    "worktree": _subcommands("list", bare=False),
    "submodule": _subcommands("status", bare=True),
    "reflog": _subcommands("show", bare=True),
    "notes": _subcommands("list", "show", bare=True),
    "config": _config,
}
