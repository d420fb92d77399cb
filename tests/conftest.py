"""Fixtures shared by several test modules (defined once here, so session scope holds)."""

from pathlib import Path

import pytest
from llama_server import llama_server

__all__ = ["isolated_data_home", "llama_server"]


@pytest.fixture(autouse=True)
def isolated_data_home(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> Path:
    """Every run keeps the docs index in the user data directory: no test writes the
    developer's (the cache and config homes are isolated where tests run the CLI)."""
    home = tmp_path_factory.mktemp("xdg-data")
    monkeypatch.setenv("XDG_DATA_HOME", str(home))
    return home
