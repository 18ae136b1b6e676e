"""Rebuild the bundled sample (data/sample/) from the development data (../shared/data).

    .venv/bin/python scripts/make_sample.py [--source ../shared/data] [--out data/sample]

What it writes, and why this way (data/sample/README.md says the same for users):
- tau2: a few whole runs of airline, retail and telecom by four agent models. The original files are too
  big for git, mostly because of the per-message `raw_data` blobs (the provider's raw LLM response), so
  each run is rewritten in its original layout with `raw_data` set to null on every message and `tasks`
  cut to the tasks its simulations use. Everything else (info, policy, messages, timestamps, rewards)
  is kept as it was. No simulation in the selection loops.
- bfcl: original JSONL lines, byte for byte, of the first `--bfcl-lines` trajectories of the `base`
  category (one line per scenario; the other categories are variants of the same scenarios).
gzip output is deterministic (mtime 0), so an unchanged selection rebuilds byte-identical files.
"""

from __future__ import annotations

import argparse
import gzip
import json
import logging
from pathlib import Path

log = logging.getLogger("make_sample")

ROOT = Path(__file__).resolve().parents[1]
SOURCE = ROOT.parent / "shared" / "data"
OUT = ROOT / "data" / "sample"

# (file in ../shared/data/tau2, file written to the sample)
TAU2 = [
    ("leaderboard-claude-sonnet-4-5_airline_default_gpt4.1_1trials.json.gz",
     "tau2-airline-claude-sonnet-4-5.json.gz"),
    ("leaderboard-ironshell_airline_gpt54_run1.json.gz", "tau2-airline-gpt-5.4.json.gz"),
    ("model_training-gpt-4.1_airline_default_gpt-4.1_1trials.json.gz", "tau2-airline-gpt-4.1.json.gz"),
    ("model_training-gpt-4.1_retail_defautl_gpt-4.1_1trials.json.gz", "tau2-retail-gpt-4.1.json.gz"),
    ("model_training-ft_gpt-4.1-2025-04-14_sierra_tau2-full-sft_BzrYdMNm_retail_default_gpt-4.1_1trials.json.gz",
     "tau2-retail-gpt-4.1-finetuned.json.gz"),
    ("model_training-gpt-4.1_telecom_default_gpt-4.1_1trials.json.gz", "tau2-telecom-gpt-4.1.json.gz"),
    ("simulations-2025-08-10T02_44_06.496849_telecom_llm_agent_gpt-4o_user_simulator_gpt-4o.json.gz",
     "tau2-telecom-gpt-4o.json.gz"),
]
BFCL = ("bfcl_v4_multi_turn_base.jsonl.gz", "bfcl-v4-multi-turn-base.jsonl.gz")


def reduce_tau2(doc: dict, max_sims: int | None = None) -> dict:
    """The same layout with raw_data nulled and only the tasks the kept simulations use."""
    sims = doc["simulations"][:max_sims] if max_sims else doc["simulations"]
    for sim in sims:
        for message in sim["messages"]:
            if "raw_data" in message:
                message["raw_data"] = None
    out = dict(doc)
    out["simulations"] = sims
    if isinstance(doc.get("tasks"), list):
        used = {str(s.get("task_id")) for s in sims}
        out["tasks"] = [t for t in doc["tasks"] if str(t.get("id")) in used]
    return out


def write_gzip(path: Path, data: bytes) -> int:
    blob = gzip.compress(data, compresslevel=9, mtime=0)
    path.write_bytes(blob)
    return len(blob)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, default=SOURCE, help="the development data folder")
    parser.add_argument("--out", type=Path, default=OUT, help="the sample folder to write")
    parser.add_argument("--bfcl-lines", type=int, default=200, help="BFCL base trajectories to keep")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    args.out.mkdir(parents=True, exist_ok=True)

    total = 0
    for src, dst in TAU2:
        doc = json.loads(gzip.decompress((args.source / "tau2" / src).read_bytes()))
        reduced = reduce_tau2(doc)
        size = write_gzip(args.out / dst, json.dumps(reduced, ensure_ascii=False).encode("utf-8"))
        total += size
        log.info("%-45s %4d simulations, %3d tasks, %7d bytes  <- %s", dst, len(reduced["simulations"]),
                 len(reduced.get("tasks") or []), size, src)

    src, dst = BFCL
    lines = gzip.decompress((args.source / "bfcl" / src).read_bytes()).split(b"\n")
    kept = [line for line in lines if line.strip()][: args.bfcl_lines]
    size = write_gzip(args.out / dst, b"\n".join(kept) + b"\n")
    total += size
    log.info("%-45s %4d trajectories, %7d bytes  <- %s", dst, len(kept), size, src)
    log.info("total %d bytes", total)


if __name__ == "__main__":
    main()
