"""Words developers type for what documentation spells another way.

Two kinds, both general to software documentation and to no one library: abbreviations
(``dict``, ``args``, ``env``) and a few pairs of everyday synonyms of the trade (a "folder" is
a "directory", a "fake" in a test is a "mock"). A query word found here is searched together
with its alternatives; none of them is required. Keys are lower case; an alternative of
several words is searched as a phrase.
"""

from __future__ import annotations

_ABBREVIATIONS = {
    "arg": "argument",
    "args": "arguments",
    "kwargs": "keyword arguments",
    "param": "parameter",
    "params": "parameters",
    "func": "function",
    "fn": "function",
    "dict": "dictionary",
    "dir": "directory",
    "dirs": "directories",
    "env": "environment",
    "config": "configuration",
    "conf": "configuration",
    "str": "string",
    "int": "integer",
    "bool": "boolean",
    "num": "number",
    "repo": "repository",
    "db": "database",
    "auth": "authentication",
    "msg": "message",
    "err": "error",
    "exe": "executable",
    "pkg": "package",
    "lib": "library",
    "img": "image",
    "cmd": "command",
    "util": "utility",
    "info": "information",
    "regex": "regular expression",
    "regexp": "regular expression",
    "async": "asynchronous",
    "tz": "time zone",
    "init": "initialize",
    "impl": "implementation",
    "obj": "object",
    "attr": "attribute",
    "attrs": "attributes",
    "var": "variable",
    "vars": "variables",
    "proc": "process",
    "tmp": "temporary",
    "temp": "temporary",
    "src": "source",
    "dest": "destination",
    "dst": "destination",
    "len": "length",
    "prev": "previous",
    "ctx": "context",
    "req": "request",
    "resp": "response",
    "perf": "performance",
    "mem": "memory",
    "max": "maximum",
    "min": "minimum",
    "dep": "dependency",
    "deps": "dependencies",
    "ms": "milliseconds",
    "sec": "seconds",
    "secs": "seconds",
    "stdin": "standard input",
    "stdout": "standard output",
    "stderr": "standard error",
}

# Each group: words that name the same thing in documentation.
_SYNONYMS = (
    ("folder", "directory"),
    ("delete", "remove"),
    ("fake", "mock", "stub"),
    ("memoize", "cache"),
    ("kill", "terminate"),
    ("checksum", "hash", "digest"),
    ("parallel", "concurrent"),
    ("exit", "quit"),
    ("download", "fetch"),
)


def _build() -> dict[str, tuple[str, ...]]:
    table: dict[str, list[str]] = {}
    for short, full in _ABBREVIATIONS.items():
        table.setdefault(short, []).append(full)
    for group in _SYNONYMS:
        for word in group:
            table.setdefault(word, []).extend(other for other in group if other != word)
    return {word: tuple(alternatives) for word, alternatives in table.items()}


ALTERNATIVES = _build()


def alternatives(word: str) -> tuple[str, ...]:
    """Other ways documentation writes ``word`` (lower case), none when it has none."""
    return ALTERNATIVES.get(word, ())
