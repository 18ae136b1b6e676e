"""`toolcast serve`: argument checks fail cleanly; uvicorn gets the app (or, for workers, the factory)."""

from __future__ import annotations

import os

import pytest
import uvicorn

from toolcast.cli.main import main
from toolcast.serving import loading
from toolcast.serving.app import app_from_env


@pytest.fixture
def uvicorn_calls(monkeypatch):
    calls = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: calls.append((app, kw)))
    monkeypatch.setattr(os, "environ", dict(os.environ))  # run() exports settings for the workers
    return calls


def test_missing_model_dir_fails_cleanly(tmp_path, capsys, uvicorn_calls):
    assert main(["serve", "--model", str(tmp_path / "nope")]) == 1
    assert "does not exist" in capsys.readouterr().err
    assert not uvicorn_calls


def test_install_without_a_loader_says_so(tmp_path, capsys, monkeypatch, uvicorn_calls):
    def none():
        raise loading.ModelLoadError("this install has no model loader: expected ...")

    monkeypatch.setattr(loading, "find_loader", none)
    assert main(["serve", "--model", str(tmp_path)]) == 1
    assert "no model loader" in capsys.readouterr().err


def test_bad_limit_fails_cleanly(tmp_path, capsys, monkeypatch, uvicorn_calls):
    monkeypatch.setattr(loading, "find_loader", lambda: (lambda d: None))
    assert main(["serve", "--model", str(tmp_path), "--max-k", "1000"]) == 1
    assert "max_k must be <=" in capsys.readouterr().err


def test_one_worker_gets_the_app(tmp_path, monkeypatch, uvicorn_calls):
    monkeypatch.setattr(loading, "find_loader", lambda: (lambda d: None))
    assert main(["serve", "--model", str(tmp_path), "--port", "9123", "--token", "t", "--no-batching"]) == 0
    (app, kw), = uvicorn_calls
    settings = app.state.serving.settings
    assert settings.token == "t" and settings.batching is False and settings.model_dir == tmp_path
    assert kw["host"] == "127.0.0.1" and kw["port"] == 9123


def test_workers_build_the_app_from_the_environment(tmp_path, monkeypatch, uvicorn_calls):
    monkeypatch.setattr(loading, "find_loader", lambda: (lambda d: None))
    monkeypatch.setenv("TOOLCAST_SERVE_TOKEN", "from-env")
    assert main(["serve", "--model", str(tmp_path), "--workers", "2", "--max-k", "4"]) == 0
    (target, kw), = uvicorn_calls
    assert target == "toolcast.serving.app:app_from_env" and kw["factory"] and kw["workers"] == 2
    settings = app_from_env().state.serving.settings
    assert settings.model_dir == tmp_path and settings.max_k == 4 and settings.token == "from-env"
