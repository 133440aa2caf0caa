"""Benches live in `bench/` (scripts, not a package): tests import them with `bench/` on sys.path."""

from __future__ import annotations

import importlib
import sys
from types import ModuleType

import pytest

from tests.conftest import ROOT


@pytest.fixture
def bench(monkeypatch) -> object:
    """`bench("name")` imports bench/name.py (as `python bench/name.py` would find its siblings)."""
    monkeypatch.syspath_prepend(str(ROOT / "bench"))

    def load(name: str) -> ModuleType:
        return sys.modules.get(name) or importlib.import_module(name)

    return load
