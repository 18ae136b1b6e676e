"""`train` unchanged under Lightning DDP: two CPU processes (gloo), tiny model, tiny logs. The processes
are started by Lightning from a script, as `toolcast train --devices 2 --strategy ddp` starts them."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

pytest.importorskip("lightning")

SCRIPT = """
import sys
from toolcast.predictor.config import TrainConfig, tiny_config
from toolcast.training.train import train

train([sys.argv[1]], sys.argv[2], max_epochs=1, seed=0, devices=2, strategy="ddp", accelerator="cpu",
      model=tiny_config(), train_config=TrainConfig(batch_size=8, warmup_steps=1), cache_dir=sys.argv[3],
      progress=False, evaluate_test=False, featurize_procs=1, pool=False)
"""


def test_train_runs_as_two_ddp_processes_on_cpu(shop_traces, tmp_path):
    data = tmp_path / "logs.jsonl"
    data.write_text("".join(t.to_json() + "\n" for t in shop_traces(30)), encoding="utf-8")
    script = tmp_path / "train_ddp.py"
    script.write_text(SCRIPT, encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if k not in ("MASTER_ADDR", "MASTER_PORT", "WORLD_SIZE",
                                                            "RANK", "LOCAL_RANK", "NODE_RANK")}
    env.update(TOOLCAST_CACHE=str(tmp_path / "cache"), OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    proc = subprocess.run([sys.executable, str(script), str(data), str(tmp_path / "model"),
                           str(tmp_path / "examples")], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=600)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-4000:]
    assert "GLOBAL_RANK: 0, MEMBER: 1/2" in out and "GLOBAL_RANK: 1, MEMBER: 2/2" in out, out[-4000:]
    metrics = json.loads((tmp_path / "model" / "metrics.json").read_text(encoding="utf-8"))
    assert metrics["world_size"] == 2 and metrics["epochs_run"] == 1
    assert (tmp_path / "model" / "model.safetensors").exists()
