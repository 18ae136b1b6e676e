"""Where the served predictor comes from (the installed loader) and what /v1/model can say about it."""

from __future__ import annotations

import logging

import pytest

import toolcast.predictor
from toolcast.serving.loading import ModelLoadError, describe, find_loader, load_predictor


class Loadable:
    name = "onnx"

    def __init__(self, path):
        self.path = path

    @classmethod
    def load(cls, path):
        if (path / "broken").exists():
            raise ValueError("config.json: field 'hidden' is missing")
        return cls(path)

    def predict(self, context, k=3):
        return []


def test_uses_the_package_loader(tmp_path, monkeypatch):
    assert find_loader() is toolcast.predictor.load
    monkeypatch.setattr(toolcast.predictor, "load", Loadable.load)
    assert find_loader() == Loadable.load
    assert load_predictor(tmp_path).path == tmp_path


def test_no_loader_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setattr(toolcast.predictor, "load", None)
    with pytest.raises(ModelLoadError, match="no model loader"):
        load_predictor(tmp_path)


def test_load_errors_name_the_directory(tmp_path, monkeypatch):
    monkeypatch.setattr(toolcast.predictor, "load", Loadable.load)
    with pytest.raises(ModelLoadError, match="does not exist"):
        load_predictor(tmp_path / "missing")
    (tmp_path / "broken").touch()
    with pytest.raises(ModelLoadError, match=r"cannot load model directory .*field 'hidden' is missing"):
        load_predictor(tmp_path)


def test_describe_prefers_info_then_attributes(caplog):
    class WithAttributes:
        name = "attrs"
        version = 7
        tools = [type("Spec", (), {"name": "a"})(), "b"]
        card = {"ece": float("nan"), "path": object()}

        def info(self):
            raise RuntimeError("no info today")

        def predict(self, context, k=3):
            return []

    with caplog.at_level(logging.ERROR):
        d = describe(WithAttributes(), default_version="v0")
    assert d.name == "attrs" and d.version == "7" and d.tools == ["a", "b"] and not d.batched
    assert set(d.card) == {"ece", "path"} and isinstance(d.card["path"], str)
    assert "info() failed" in caplog.text

    class Bare:
        def predict(self, context, k=3):
            return []

        def predict_batch(self, contexts, k=3):
            return []

    d = describe(Bare(), default_version="v0")
    assert d.name == "Bare" and d.version == "v0" and d.tools == [] and d.card == {} and d.batched
