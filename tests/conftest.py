"""Fixtures shared by several test modules (defined once here, so session scope holds)."""

from llama_server import llama_server

__all__ = ["llama_server"]
