"""Tool contracts: what a tool promises, and so whether it may run before the agent asks for it.

Eligibility defaults to deny. A tool runs ahead only when its contract says all of:

- `side_effect_free`: running it changes nothing anyone can observe (required);
- `idempotent`: running it twice is harmless. Speculation can make a call the agent then also makes (the
  speculative result was invalidated, or a hedged real run overlaps it), so this is required too. A read
  from a metered API is side-effect-free for the data but not for the bill: mark it not idempotent;
- `stable_for` > 0: how many seconds a result stays fresh (the TTL of a speculative result);
- not `needs_confirmation`: a call a human must approve never runs ahead.

`reads` / `mutates` are resource keys for invalidation. A key is a string that may name arguments
(`"order:{order_id}"`, filled from the call's arguments; a missing argument becomes `*`) and may end in
a wildcard (`"order:*"`). `None` means "not declared": an undeclared `mutates` invalidates everything
(the epoch rule), an undeclared `reads` is invalidated by any state-changing call. Keys name state that
every session of a runtime shares (`order:A1` is one order whoever asks), so invalidation is
runtime-wide unless the runtime is told its sessions share nothing (`RuntimeConfig.shared_state`).
An argument fills a placeholder in its canonical form (`canonical.key_part`, the form calls are matched
by): `order_id=1` and `order_id=1.0` are one resource; a value with no canonical form fills in as `*`.

Contradictions are refused when a contract is made: a `stable_for` that is not a finite number >= 0, and
`side_effect_free` with keys in `mutates`.

MCP tool annotations fill a contract in only for a server the user trusts: the MCP specification calls
annotations hints that clients must not base decisions on when they come from untrusted servers.
`readOnlyHint` is necessary, not sufficient: trust, a freshness window and the absence of a
confirmation requirement come from the user, never from the server.
"""

from __future__ import annotations

import fnmatch
import json
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from toolcast.runtime.canonical import key_part

_PLACEHOLDER = re.compile(r"\{([^{}]*)\}")


@dataclass(frozen=True)
class ToolContract:
    """One tool's promises. The defaults describe a tool nobody vouched for: never run ahead."""

    side_effect_free: bool = False
    """Running it changes no state (required to run ahead at all)."""
    idempotent: bool = False
    """Running it twice with the same arguments is harmless (required to run ahead)."""
    stable_for: float = 0.0
    """Seconds a result stays fresh, counted from the start of the run (the TTL)."""
    reads: tuple[str, ...] | None = None
    """Resource keys its result depends on; None = undeclared (anything may change it)."""
    mutates: tuple[str, ...] | None = None
    """Resource keys a call changes; None = undeclared (everything in the session)."""
    needs_confirmation: bool = False
    """A human approves each call: never run ahead."""

    def __post_init__(self) -> None:
        v = self.stable_for
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v < 0:
            raise ValueError(f"stable_for must be a finite number of seconds >= 0, got {v!r}")
        for name in ("reads", "mutates"):
            keys = getattr(self, name)
            if keys is not None:
                if isinstance(keys, str) or not all(isinstance(k, str) for k in keys):
                    raise ValueError(f"{name} must be a list of resource-key strings, got {keys!r}")
                object.__setattr__(self, name, tuple(keys))
        if self.side_effect_free and self.mutates:
            raise ValueError(f"a side-effect-free tool mutates nothing, yet mutates={list(self.mutates)!r}")

    @property
    def speculable(self) -> bool:
        """May this tool run before the agent asks? (Contract only; the planner adds cost and budgets.)"""
        return (self.side_effect_free and self.idempotent and self.stable_for > 0
                and not self.needs_confirmation)

    @property
    def state_changing(self) -> bool:
        """A real call of this tool may invalidate speculative results."""
        return not self.side_effect_free

    def why_not(self) -> str | None:
        """The first reason this tool may not run ahead, or None when it may."""
        if not self.side_effect_free:
            return "not side-effect-free"
        if not self.idempotent:
            return "not idempotent"
        if self.needs_confirmation:
            return "needs confirmation"
        if self.stable_for <= 0:
            return "no freshness window (stable_for = 0)"
        return None

    def for_call(self, args: Mapping[str, Any]) -> ToolContract:
        """The contract of one call of this tool. The tool's own here; a tool whose promises depend on
        its arguments (a shell tool: each command line; `coding_contracts.py`) overrides this."""
        return self

    def read_keys(self, args: Mapping[str, Any]) -> frozenset[str] | None:
        return None if self.reads is None else resolve_keys(self.reads, args)

    def mutate_keys(self, args: Mapping[str, Any]) -> frozenset[str] | None:
        return None if self.mutates is None else resolve_keys(self.mutates, args)

    # ---- JSON ----
    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        for name in ("reads", "mutates"):
            if d[name] is not None:
                d[name] = list(d[name])
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], where: str = "contract") -> ToolContract:
        """Build from JSON; an unknown field or a wrong type is a ValueError naming the field."""
        if not isinstance(d, Mapping):
            raise ValueError(f"{where}: expected an object, got {type(d).__name__}")
        known = {f for f in cls.__dataclass_fields__}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"{where}: unknown field(s) {', '.join(unknown)}; "
                             f"expected {', '.join(sorted(known))}")
        kwargs: dict[str, Any] = {}
        for name in ("side_effect_free", "idempotent", "needs_confirmation"):
            if name in d:
                if not isinstance(d[name], bool):
                    raise ValueError(f"{where}.{name}: expected true or false, got {d[name]!r}")
                kwargs[name] = d[name]
        if "stable_for" in d:
            v = d["stable_for"]
            if isinstance(v, bool) or not isinstance(v, (int, float)):
                raise ValueError(f"{where}.stable_for: expected seconds (a number), got {v!r}")
            kwargs["stable_for"] = float(v)
        for name in ("reads", "mutates"):
            if name in d and d[name] is not None:
                v = d[name]
                if not isinstance(v, list) or not all(isinstance(k, str) for k in v):
                    raise ValueError(f"{where}.{name}: expected a list of strings, got {v!r}")
                kwargs[name] = tuple(v)
        try:
            return cls(**kwargs)
        except ValueError as e:
            raise ValueError(f"{where}: {e}") from None

    @classmethod
    def from_mcp(cls, annotations: Mapping[str, Any] | None, *, trusted: bool, stable_for: float = 30.0,
                 needs_confirmation: bool = False, allow_open_world: bool = True) -> ToolContract:
        """A contract from MCP tool annotations, for a server the user marked `trusted`.

        Untrusted server: deny, whatever it claims. Trusted: runs ahead only with `readOnlyHint: true`
        (the spec's default is false); a read-only tool is idempotent by definition (the spec gives
        `idempotentHint` meaning only for tools that are not read-only). `openWorldHint` (default true)
        marks tools that reach outside systems; `allow_open_world=False` keeps those out.
        """
        ann = dict(annotations or {})
        if not trusted or ann.get("readOnlyHint") is not True:
            return DENY
        if not allow_open_world and ann.get("openWorldHint", True) is not False:
            return DENY
        return cls(side_effect_free=True, idempotent=True, stable_for=stable_for,
                   needs_confirmation=needs_confirmation)


DENY = ToolContract()
"""The contract of a tool nobody described: state-changing, mutating everything, never run ahead."""


def read_only(stable_for: float = 30.0, reads: Iterable[str] | None = None) -> ToolContract:
    """Shorthand for a side-effect-free, idempotent tool whose results stay fresh `stable_for` seconds."""
    return ToolContract(side_effect_free=True, idempotent=True, stable_for=stable_for,
                        reads=None if reads is None else tuple(reads))


# ---- resource keys ---------------------------------------------------------------------------------


class _Wild(dict):
    def __missing__(self, key: str) -> str:
        return "*"


def resolve_keys(templates: Iterable[str], args: Mapping[str, Any]) -> frozenset[str]:
    """Fill `{arg}` placeholders from the call's arguments, in their canonical form (glob characters
    escaped: a value is a literal); an absent argument or one with no canonical form is a wildcard."""
    values = _Wild()
    for k, v in args.items():
        part = key_part(v)
        if part is not None:
            values[k] = _GLOB.sub(r"[\1]", part)
    return frozenset(_PLACEHOLDER.sub(lambda m: values[m.group(1)], t) for t in templates)


_GLOB = re.compile(r"([*?\[])")


def keys_overlap(a: frozenset[str] | None, b: frozenset[str] | None) -> bool:
    """Could a change to keys `a` affect a result that depends on keys `b`? None = everything."""
    if a is None or b is None:
        return True
    return any(_key_overlap(x, y) for x in a for y in b)


def _key_overlap(x: str, y: str) -> bool:
    return x == y or fnmatch.fnmatchcase(x, y) or fnmatch.fnmatchcase(y, x)


# ---- a policy: contracts by tool name --------------------------------------------------------------


@dataclass
class ContractPolicy:
    """Contracts by exact tool name, then by glob pattern (first match wins), else `default` (deny)."""

    tools: dict[str, ToolContract] = field(default_factory=dict)
    patterns: list[tuple[str, ToolContract]] = field(default_factory=list)
    default: ToolContract = DENY

    def for_tool(self, name: str) -> ToolContract:
        if name in self.tools:
            return self.tools[name]
        for pattern, contract in self.patterns:
            if fnmatch.fnmatchcase(name.lower(), pattern.lower()):
                return contract
        return self.default

    def is_read(self, name: str) -> bool:
        """Whether the tool may run ahead (its contract is speculable): the fan-out's and the horizon
        scorer's reads."""
        return self.for_tool(name).speculable

    def is_write(self, name: str) -> bool:
        """Whether the tool changes state (a speculative result read before it is stale after it)."""
        return self.for_tool(name).state_changing


def read_contracts_file(path: str | Path, what: str) -> Any:
    """A contracts file's JSON; a file that cannot be read or parsed is a ValueError naming it (and the
    line)."""
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as e:
        raise ValueError(f"{path}: cannot read {what}: {e.strerror or e}") from None
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}: line {e.lineno}: not valid JSON: {e.msg}") from None
