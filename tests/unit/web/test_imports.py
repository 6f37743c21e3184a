"""Modules that other entry points (benches, commands, tests) import first load on their own: no import cycle."""

from __future__ import annotations

import subprocess
import sys

import pytest

ENTRY_MODULES = [
    "web.openapi",
    "web.api.tiers",
    "web.api.wallet",
    "web.wiring",
    "web.demo",
    "web.program",
    "web.exports",
]


@pytest.mark.parametrize("module", ENTRY_MODULES)
def test_module_imports_alone(module: str) -> None:
    done = subprocess.run([sys.executable, "-c", f"import {module}"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
