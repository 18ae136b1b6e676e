"""`sed` and `awk` command lines that only read: the checkers behind `shell_commands` for these two.

sed: only `-n -E -s -u -z`-style options and scripts whose commands this parser follows (print, delete,
quit, substitute with flags that neither write nor run: `w`, `e`, `r`, ... are denied); `-i`, `-f` and
the like edit files or read a script file. awk: an inline script with no `system`, `getline`, output
redirection, pipe, `fflush` or `close`; long options and `-f`, `-E`, `-i`, `-l` (a script file, an
include, an extension, in-place editing) are denied.
"""

from __future__ import annotations

import re
from collections.abc import Callable

_SED_FLAGS = re.compile(r"^[gpiIm0-9]*$")
_SED_ADDR = r"(?:\d+|\$|/(?:[^/\\]|\\.)*/)(?:,(?:\d+|\$|/(?:[^/\\]|\\.)*/|\+\d+))?"
_SED_SIMPLE = re.compile(rf"^\s*(?:{_SED_ADDR})?\s*!?\s*[pdqQ=lnNgGhHxPD]?\s*$")


def _sed_script_ok(script: str) -> bool:
    for part in re.split(r"[;\n]", script):
        part = part.strip()
        m = re.match(rf"^(?:{_SED_ADDR})?\s*!?\s*s(.)", part)
        if m:
            d = re.escape(m.group(1))
            body = rf"(?:[^{d}\\]|\\.)*"
            full = re.match(rf"^(?:{_SED_ADDR})?\s*!?\s*s{d}{body}{d}{body}{d}(.*)$", part)
            if full is None or not _SED_FLAGS.match(full.group(1)):
                return False
        elif part and not _SED_SIMPLE.match(part):
            return False
    return True


_SED_LONG = ("--quiet", "--silent", "--regexp-extended", "--null-data", "--separate", "--unbuffered",
             "--posix", "--debug", "--sandbox")


def sed_check(args: list[str], deny: Callable[[str], Exception]) -> None:
    """Raises `deny(reason)` unless this sed command line only reads (prints to stdout)."""
    scripts, operands, i = [], [], 0
    while i < len(args):
        a = args[i]
        cluster = a.startswith("-") and not a.startswith("--") and len(a) > 1
        if a in ("-e", "--expression") or (cluster and a.endswith("e") and set(a[1:-1]) <= set("nEsuz")):
            scripts.append(args[i + 1] if i + 1 < len(args) else "")
            i += 2
            continue
        if a.startswith("--expression="):
            scripts.append(a.split("=", 1)[1])
        elif a.startswith("--") and a not in _SED_LONG:  # --in-place, --file, and their abbreviations
            raise deny(f"sed option {a} edits files, reads a script file or is not followed here")
        elif cluster and set(a[1:]) - set("nEsuz"):  # -i, -I, -f, -l N, ...
            raise deny(f"sed option {a} edits files, reads a script file or is not followed here")
        elif not a.startswith("-"):
            operands.append(a)
        i += 1
    if not scripts:
        if not operands:
            raise deny("sed without a script")
        scripts.append(operands.pop(0))
    if not all(_sed_script_ok(s) for s in scripts):
        raise deny("sed script with a command this parser does not follow (w, e, r, ...)")


def awk_check(args: list[str], deny: Callable[[str], Exception]) -> None:
    """Raises `deny(reason)` unless this awk command line only reads (no script file, no writes)."""
    script = None
    i = 0
    while i < len(args):
        a = args[i]
        if a.startswith("--") or a.startswith(("-f", "-i", "-E", "-l")):  # gawk accepts abbreviations
            raise deny(f"awk {a} runs a script file, loads code or edits in place")
        if a in ("-F", "-v"):
            i += 2
            continue
        if not a.startswith("-") and script is None:
            script = a
        i += 1
    if script is None:
        raise deny("awk without a script")
    if any(t in script for t in ("system", "getline", ">", "|", "fflush", "close")):
        raise deny("awk script that may write or run commands")
