"""The vocabularies a model learns from its training logs, saved as `vocab.json` in the model directory.

Tool and agent ids, extractor kinds, the slots' cross-task constants, tool-transition counts, where each
slot's values came from, and each agent set-up's tools. `training/examples.py` builds them from the
training split; the featurizer reads them.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from toolcast.data.schema import ToolSpec
from toolcast.predictor.features.catalog import Catalog

TOOL_ID_UNSEEN, TOOL_ID_RESPOND, TOOL_ID_UNKNOWN = 0, 1, 2


def _checked_catalog(catalog: dict[str, Any]) -> Catalog:
    """The catalogue as read, each spec checked here: it is only read at the first context without tools,
    where a malformed one would fail a prediction instead of the model's load."""
    for key, entry in catalog.items():
        if not isinstance(entry, list):
            raise ValueError(f"catalog[{key!r}]: expected a list of tool specs, got {type(entry).__name__}")
        for i, spec in enumerate(entry):
            ToolSpec.from_dict(spec, f"catalog[{key!r}][{i}].")
    return catalog


@dataclass
class Vocabularies:
    """Learned ids for tools and agents, extractor kinds, and slot constants; saved as `vocab.json`."""

    tools: dict[str, int] = field(default_factory=dict)
    """Tool name -> learned id (>= 3; 0 unseen, 1 respond, 2 unknown)."""
    agents: dict[str, int] = field(default_factory=dict)
    """`agent_key` -> id (>= 1; 0 unseen)."""
    kinds: dict[str, int] = field(default_factory=dict)
    """Extractor kind -> id (>= 1; 0 unknown kind)."""
    constants: dict[str, dict[str, list[Any]]] = field(default_factory=dict)
    """Tool -> slot -> values that recur across task groups (proposed as candidates for that slot)."""
    transitions: dict[str, dict[str, int]] = field(default_factory=dict)
    """`cues.transition_keys` key -> next tool (or `<respond>`) -> count, over the training logs."""
    value_sources: dict[str, dict[str, dict[str, int]]] = field(default_factory=dict)
    """Tool -> slot -> `slots.source_sig` -> how many of the slot's values came from that source."""
    catalog: Catalog = field(default_factory=dict)
    """The tools of each agent set-up in the training logs, for contexts that list none (`catalog`)."""

    @property
    def n_tool_ids(self) -> int:
        return max(self.tools.values(), default=TOOL_ID_UNKNOWN) + 1

    @property
    def n_agents(self) -> int:
        return max(self.agents.values(), default=0) + 1

    def to_dict(self) -> dict[str, Any]:
        return {
            "tools": self.tools,
            "agents": self.agents,
            "kinds": self.kinds,
            "constants": self.constants,
            "transitions": self.transitions,
            "value_sources": self.value_sources,
            "catalog": self.catalog,
        }

    @classmethod
    def from_dict(cls, d: Any) -> Vocabularies:
        if not isinstance(d, dict) or not all(
            isinstance(d.get(k, {}), dict)
            for k in ("tools", "agents", "kinds", "constants", "transitions", "catalog")
        ):
            raise ValueError(
                "vocab.json: expected an object with tools, agents, kinds, constants, transitions objects"
            )
        return cls(
            tools={str(k): int(v) for k, v in d.get("tools", {}).items()},
            agents={str(k): int(v) for k, v in d.get("agents", {}).items()},
            kinds={str(k): int(v) for k, v in d.get("kinds", {}).items()},
            constants=d.get("constants", {}),
            transitions=d.get("transitions", {}),
            value_sources=d.get("value_sources", {}),
            catalog=_checked_catalog(d.get("catalog", {})),
        )

    def save(self, path: str | os.PathLike) -> None:
        Path(path).write_text(
            json.dumps(self.to_dict(), ensure_ascii=False, sort_keys=True), encoding="utf-8"
        )

    @classmethod
    def load(cls, path: str | os.PathLike) -> Vocabularies:
        return cls.from_dict(json.loads(Path(path).read_text(encoding="utf-8")))
