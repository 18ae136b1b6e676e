"""Logs larger than memory: import, featurize and one training epoch on the development data replicated.

    nice .venv/bin/python benchmarks/logs_at_scale.py copies --scales 1 4 16      # writes the copies
    nice .venv/bin/python benchmarks/logs_at_scale.py import --scales 1 4 16
    nice .venv/bin/python benchmarks/logs_at_scale.py featurize --scales 1 4 --procs 1 2
    nice .venv/bin/python benchmarks/logs_at_scale.py epoch --scales 1 4
    nice .venv/bin/python benchmarks/logs_at_scale.py read --scales 1 [--code /tmp/base]
    nice .venv/bin/python benchmarks/logs_at_scale.py parity --scales 1 --epochs 2 --code /tmp/base/pkg

`copies`: ../shared/data (tau2 JSON documents + BFCL JSON lines) copied k times into <work>/k/, each copy
made distinct (simulation ids and task ids, BFCL ids and groups get a `~r<i>` suffix), so nothing is a
duplicate and the split spreads the copies' groups like new tasks; plus <work>/k/bfcl.jsonl, every BFCL
copy in ONE plain JSON-lines file (streaming within a file, and folding's two-pass path past its buffer).
Each step runs as a subprocess under `/usr/bin/time -v` (wall time, peak resident memory of the largest
process: featurizing with N processes reports the largest of them, and the sum is about N times it).
`import` runs `toolcast import` over the k-fold folder and over the one-file JSONL; `featurize` builds
the example cache (`NextCallDataModule.prepare_data`) from the imported JSONL with 1 and 2 processes, the
splits cached beforehand so the figure is featurizing alone; `epoch` runs `toolcast train --max-epochs 1`
over that cache; `read` reads one epoch of its training batches, no model (the data path alone);
`parity` trains twice with seed 0, through the code before this change (`--code`: a
folder holding its `toolcast` package, e.g. `git archive` of the parent commit with data/ etc. linked
under toolcast/) and through this one, and compares the featurized arrays (.npz then, Arrow now) and the
figures. Prints one line per run; figures go to BENCHMARKS.md by hand.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve()
DATA = next((d / "shared" / "data" for d in HERE.parents if (d / "shared" / "data").is_dir()), HERE)
WORK = Path(os.environ.get("TOOLCAST_SCALE_DIR", "/tmp/toolcast-scale"))
BIN = Path(sys.executable).parent
CODE: dict[str, str] = {}
"""PYTHONPATH for the measured commands (`--code DIR`: another checkout's `toolcast` package, e.g. the code
before this change, to compare)."""


def _suffix(value: object, r: int) -> str:
    return f"{value}~r{r}"


def make_copies(k: int) -> Path:
    out = WORK / str(k)
    if (out / "done").exists():
        return out
    shutil.rmtree(out, ignore_errors=True)
    (out / "logs").mkdir(parents=True)
    with open(out / "bfcl.jsonl", "w", encoding="utf-8") as one_file:
        for r in range(k):
            for src in sorted((DATA / "tau2").glob("*.json.gz")):
                doc = json.loads(gzip.decompress(src.read_bytes()))
                for sim in doc.get("simulations") or []:
                    sim["id"] = _suffix(sim["id"], r)
                    sim["task_id"] = _suffix(sim["task_id"], r)
                dst = out / "logs" / f"r{r}-{src.name}"
                dst.write_bytes(gzip.compress(json.dumps(doc).encode(), compresslevel=1))
            for src in sorted((DATA / "bfcl").glob("*.jsonl.gz")):
                lines = []
                for line in gzip.decompress(src.read_bytes()).decode().splitlines():
                    rec = json.loads(line)
                    rec["metadata"]["id"] = _suffix(rec["metadata"]["id"], r)
                    rec["metadata"]["group"] = _suffix(rec["metadata"]["group"], r)
                    lines.append(json.dumps(rec))
                text = "\n".join(lines) + "\n"
                (out / "logs" / f"r{r}-{src.name}").write_bytes(gzip.compress(text.encode(), compresslevel=1))
                one_file.write(text)
    (out / "done").write_text("ok")
    return out


def _anon_kib(root: int) -> tuple[int, int, int]:
    """Anonymous resident memory (RssAnon: heap, not the file pages of a memory map) of `root` and every
    process under it, in KiB: summed, and the largest one process's (a forked worker counts the pages
    it shares with its parent, copy-on-write, in both), and the measured command's own (the process
    `/usr/bin/time` runs; its forked workers are the others)."""
    children: dict[int, list[int]] = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open(f"/proc/{d}/stat") as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            children.setdefault(ppid, []).append(int(d))
    total, largest, main, stack = 0, 0, 0, [(root, 0)]
    while stack:
        pid, depth = stack.pop()
        stack.extend((c, depth + 1) for c in children.get(pid, []))
        try:
            with open(f"/proc/{pid}/status") as f:
                kib = next((int(line.split()[1]) for line in f if line.startswith("RssAnon:")), 0)
        except OSError:
            continue
        total += kib
        largest = max(largest, kib)
        if depth == 1:
            main = max(main, kib)
    return total, largest, main


def measured(cmd: list[str], env: dict[str, str] | None = None) -> dict:
    """Run `cmd` under /usr/bin/time -v: wall seconds, peak resident memory (MiB) of its largest process
    (file pages of memory-mapped Arrow included: the kernel counts them, and drops them under pressure),
    and the peak of anonymous memory summed over all its processes and of its largest process (sampled
    twice a second)."""
    started = time.perf_counter()
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", **CODE, **(env or {})}
    # cwd /tmp: `python -c` puts the working directory first on sys.path, and a checkout's toolcast/
    # there would shadow the package named by PYTHONPATH (--code)
    proc = subprocess.Popen(["/usr/bin/time", "-v", *cmd], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, cwd="/tmp", env=env)
    outputs: list[str] = []
    reader = threading.Thread(target=lambda: outputs.extend(proc.communicate()))
    reader.start()
    anon = anon_one = anon_main = 0
    while reader.is_alive():
        total, largest, main = _anon_kib(proc.pid)
        anon, anon_one, anon_main = max(anon, total), max(anon_one, largest), max(anon_main, main)
        reader.join(0.5)
    stdout, stderr = outputs
    wall = time.perf_counter() - started
    if proc.returncode != 0:
        sys.stderr.write(stdout[-3000:] + stderr[-3000:])
        raise SystemExit(f"failed: {' '.join(cmd)}")
    rss = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", stderr).group(1))
    cpu = sum(float(re.search(rf"{kind} time \(seconds\): ([\d.]+)", stderr).group(1))
              for kind in ("User", "System"))  # of every process, forked workers included
    return {"seconds": round(wall, 1), "peak_mib": round(rss / 1024), "anon_mib": round(anon / 1024),
            "anon_one_mib": round(anon_one / 1024), "anon_main_mib": round(anon_main / 1024),
            "cpu": round(cpu, 1), "stdout": stdout.strip()[-400:], "stderr": stderr}


def size_mib(path: Path) -> float:
    files = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]
    return round(sum(p.stat().st_size for p in files) / 2**20, 1)


ONLY: list[str] = []


def do_import(k: int) -> None:
    src = make_copies(k)
    for name, inputs in (("folder", src / "logs"), ("one JSONL file", src / "bfcl.jsonl")):
        if ONLY and name not in ONLY:
            continue
        out = src / ("imported.jsonl" if name == "folder" else "imported-bfcl.jsonl")
        if CODE:
            out = out.with_suffix(".other.jsonl")
        m = measured([str(BIN / "toolcast"), "import", str(inputs), "--out", str(out)])
        print(f"import {k}x {name}: input {size_mib(inputs)} MiB, output {size_mib(out)} MiB, "
              f"{m['seconds']} s, peak {m['peak_mib']} MiB, anonymous {m['anon_mib']} MiB | "
              f"{m['stdout'].splitlines()[-1]}", flush=True)


FEATURIZE = """
import logging, sys, time
from pathlib import Path
logging.basicConfig(level=logging.WARNING)
logging.getLogger("toolcast.training.datamodule").setLevel(logging.INFO)
from toolcast.data.splits import load_splits
from toolcast.predictor.config import Config, ModelConfig, TrainConfig
from toolcast.predictor.features.extractors import extract_candidates
from toolcast.training.datamodule import NextCallDataModule
data, cache, procs = sys.argv[1], sys.argv[2], int(sys.argv[3])
load_splits(data, seed=0)  # cached by the warm-up run: featurizing alone is timed
dm = NextCallDataModule([data], Config(model=ModelConfig(), train=TrainConfig(max_epochs=1, seed=0)),
                        cache, extract_candidates, seed=0, featurize_procs=procs)
t = time.perf_counter()
dm.prepare_data()
dm.setup("fit")
print(f"featurized in {time.perf_counter() - t:.1f} s: " + str({k: len(v) for k, v in dm.examples.items()}))
"""


def do_featurize(k: int, procs: list[int]) -> None:
    src = make_copies(k)
    data = src / "imported.jsonl"
    if not data.exists():
        raise SystemExit(f"run `import --scales {k}` first")
    env = {"TOOLCAST_CACHE": str(src / "cache")}
    subprocess.run([sys.executable, "-c", "import sys; from toolcast.data.splits import load_splits; "
                    "load_splits(sys.argv[1], seed=0)", str(data)], check=True, env={**os.environ, **env})
    for n in procs:
        cache = src / f"examples-p{n}"
        shutil.rmtree(cache, ignore_errors=True)
        m = measured([sys.executable, "-c", FEATURIZE, str(data), str(cache), str(n)], env)
        phases = "; ".join(re.findall(r"(splits, tokenizer.*? s \(.*?\)|examples featurized in .*? s)",
                                      m["stderr"]))
        print(f"featurize {k}x with {n} process(es): {m['seconds']} s ({m['cpu']} s CPU, all processes; load "
              f"{os.getloadavg()[0]:.1f}), peak {m['peak_mib']} MiB (largest "
              f"process), anonymous {m['anon_mib']} MiB (all), {m['anon_one_mib']} MiB (largest process), "
              f"{m['anon_main_mib']} MiB (the main process) | "
              f"{m['stdout'].splitlines()[-1]} | {phases}",
              flush=True)


def do_epoch(k: int) -> None:
    src = make_copies(k)
    data = src / "imported.jsonl"
    env = {"TOOLCAST_CACHE": str(src / "cache")}
    cache = src / "examples-p1" if (src / "examples-p1").exists() else src / "examples-p2"
    script = ("import sys; from toolcast.training.train import train; "
              "train([sys.argv[1]], sys.argv[2], max_epochs=1, seed=0, cache_dir=sys.argv[3], "
              "progress=False, evaluate_test=False)")
    m = measured([sys.executable, "-c", script, str(data), str(src / "model"), str(cache)], env)
    metrics = json.loads((src / "model" / "metrics.json").read_text())
    print(f"epoch {k}x: {metrics['examples']} examples, {m['seconds']} s in all (fit "
          f"{metrics['seconds']['fit']} s, featurize/cache {metrics['seconds']['featurize']} s), "
          f"peak {m['peak_mib']} MiB, anonymous {m['anon_mib']} MiB, val loss {metrics['best_val_loss']:.4f}",
          flush=True)


READ = """
import sys, time
from toolcast.predictor.config import TrainConfig
from toolcast.training.datamodule import BucketSampler
from toolcast.training.example_store import ExampleRows, load_examples
rows = ExampleRows(load_examples(sys.argv[1]))
size = TrainConfig().batch_size
order = list(BucketSampler(rows.lengths(), size, 0))
batches = [order[i : i + size] for i in range(0, len(order), size)]
t = time.perf_counter()
for b in batches:
    rows.__getitems__(b)
t = time.perf_counter() - t
print(f"{len(rows)} rows, {len(batches)} batches of {size}: {t:.1f} s, {1000 * t / len(batches):.1f} ms each")
"""


def do_read(k: int) -> None:
    """One epoch of training batches read from the example cache, in the bucketing sampler's order, no
    model: what the data path costs a training epoch (with `--code`, the code before)."""
    src = make_copies(k)
    (train,) = (src / "examples-p1").glob("*/train") if (src / "examples-p1").exists() else (
        src / "examples-p2").glob("*/train")
    m = measured([sys.executable, "-c", READ, str(train)])
    print(f"read {k}x: {m['stdout'].splitlines()[-1]} (load {os.getloadavg()[0]:.1f}), peak "
          f"{m['peak_mib']} MiB, anonymous {m['anon_mib']} MiB", flush=True)


OLD_CACHE = """
import sys
from dataclasses import replace
from toolcast.predictor.config import Config, ModelConfig, TrainConfig
from toolcast.predictor.features.extractors import extract_candidates
from toolcast.training.datamodule import NextCallDataModule
tc = replace(TrainConfig(), max_epochs=int(sys.argv[3]), seed=0)
dm = NextCallDataModule([sys.argv[1]], Config(model=ModelConfig(), train=tc), sys.argv[2], extract_candidates,
                        seed=0)
print(dm.cache)
"""
TRAIN = ("import sys; from toolcast.training.train import train; "
         "train([sys.argv[1]], sys.argv[2], max_epochs=int(sys.argv[4]), seed=0, cache_dir=sys.argv[3], "
         "progress=False)")


def do_parity(k: int, epochs: int, before: str, data: Path | None) -> None:
    """The same training (seed 0) through this checkout (examples in Arrow) and through the code before
    this change (`before`: its package dir; examples in .npz), on the same examples: the tokenizer's
    training is not reproducible from run to run (the WordPiece trainer breaks ties in hash order: two
    runs of either path learn different vocabularies), so the second run is handed the first one's
    tokenizer, vocabularies and examples, converted to its .npz cache. Same figures = same pipeline."""
    import numpy as np

    from toolcast.training.example_store import load_examples

    src = make_copies(k) if data is None else WORK / f"parity-{data.name}"
    src.mkdir(parents=True, exist_ok=True)
    data = data or src / "imported.jsonl"
    for d in src.glob("parity-*"):
        shutil.rmtree(d)
    old_env = {"PYTHONPATH": before}
    metrics = {}
    for label, code in (("arrow", {}), ("npz", old_env)):
        out, cache = src / f"parity-model-{label}", src / f"parity-examples-{label}"
        env = {"TOOLCAST_CACHE": str(src / f"parity-cache-{label}"), **code}
        if label == "npz":  # the Arrow run's examples, in the old cache's layout and place
            (new_dir,) = [d for d in (src / "parity-examples-arrow").iterdir() if d.is_dir()]
            where = subprocess.run([sys.executable, "-c", OLD_CACHE, str(data), str(cache), str(epochs)],
                                   cwd="/tmp", env={**os.environ, **env}, check=True, capture_output=True,
                                   text=True).stdout.strip().splitlines()[-1]
            old_dir = Path(where)
            old_dir.mkdir(parents=True)
            for name in ("tokenizer.json", "vocab.json", "sizes.json"):
                shutil.copy(new_dir / name, old_dir / name)
            for split in ("train", "validation", "test"):
                ds = load_examples(new_dir / split)
                rows = ds.with_format("numpy")[:]
                arrays = {}
                for c, f in ds.features.items():
                    if c != "n_events":  # the Arrow store's own column
                        dtype = getattr(f, "dtype", None) or f.feature.dtype  # as stored (int32, bool...)
                        arrays[c] = np.asarray(rows[c]).astype(dtype)
                np.savez(old_dir / f"{split}.npz", **arrays)
            (old_dir / "done").write_text("ok")
        m = measured([sys.executable, "-c", TRAIN, str(data), str(out), str(cache), str(epochs)], env)
        metrics[label] = json.loads((out / "metrics.json").read_text())
        print(f"parity {label}: {m['seconds']} s, peak {m['peak_mib']} MiB (anonymous {m['anon_mib']}), "
              f"examples {metrics[label]['examples']}, best val loss {metrics[label]['best_val_loss']!r}, "
              f"test {metrics[label]['test']['calibrated']}", flush=True)
    a, b = metrics["npz"], metrics["arrow"]
    print(f"parity: best val loss equal {a['best_val_loss'] == b['best_val_loss']}, best epoch "
          f"{a['best_epoch']} / {b['best_epoch']}, test figures equal {a['test'] == b['test']}; seconds to "
          f"featurize or find the cache: {b['seconds']['featurize']} (Arrow) / {a['seconds']['featurize']} "
          "(npz)", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("step", choices=["copies", "import", "featurize", "epoch", "read", "parity"])
    parser.add_argument("--epochs", type=int, default=2, help="parity: most epochs of each training")
    parser.add_argument("--data", type=Path, help="parity: these logs instead of the copies")
    parser.add_argument("--scales", type=int, nargs="+", default=[1, 4, 16])
    parser.add_argument("--procs", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--code", metavar="DIR", help="run the steps with the toolcast package under DIR")
    parser.add_argument("--only", choices=["folder", "one JSONL file"], help="import: one of the two inputs")
    args = parser.parse_args()
    if args.code:
        CODE["PYTHONPATH"] = args.code
    ONLY.extend([args.only] if args.only else [])
    print(f"load average {os.getloadavg()}; code {CODE or 'this checkout'}", flush=True)
    for k in args.scales:
        if args.step == "copies":
            print(f"{k}x: {size_mib(make_copies(k) / 'logs')} MiB gzip", flush=True)
        elif args.step == "import":
            do_import(k)
        elif args.step == "featurize":
            do_featurize(k, args.procs)
        elif args.step == "epoch":
            do_epoch(k)
        elif args.step == "read":
            do_read(k)
        else:
            if not args.code:
                raise SystemExit("parity needs --code DIR: the package before the change")
            CODE.clear()
            do_parity(k, args.epochs, args.code, args.data)
    print(f"load average {os.getloadavg()}", flush=True)


if __name__ == "__main__":
    main()
