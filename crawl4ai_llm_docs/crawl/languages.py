"""The language of a code block, read from the markup's usual conventions, never guessed.

Generators declare it in a handful of ways, all read here:

- ``data-lang`` / ``data-language`` (Hugo, Asciidoctor, many themes);
- a class ``language-X`` or ``lang-X`` (CommonMark renderers, highlight.js, Prism, mdBook),
  ``highlight-X`` on a wrapper (Sphinx), ``sourceCode X`` (pandoc), ``brush: X``
  (SyntaxHighlighter);
- a bare class naming a language on the ``<pre>`` or its ``<code>`` (qdoc's ``cpp``, RDoc's
  ``ruby``, YARD's ``code ruby``, rustdoc's ``rust``, highlight.js's ``hljs yaml``).

A declaration that names no language (Sphinx's ``highlight-default``, whose lexer is the
project's setting and not in the page; ``none``, ``text``, ``plain``, ``nohighlight``) means
"unknown": the block gets no language rather than a guess.
"""

from __future__ import annotations

import re
from typing import Any

_PREFIXED = re.compile(r"^(?:language|lang|highlight|source)-([\w+#.-]+)$", re.IGNORECASE)
# Declarations that name no language: the block's language is unknown.
_NO_LANGUAGE = frozenset(
    ("default", "none", "text", "plain", "plaintext", "nohighlight", "no-highlight", "txt", "raw")
)
# Spellings folded as before (Sphinx's lexer names); any other name is kept as declared.
_ALIASES = {
    "python3": "python",
    "py": "python",
    "py3": "python",
    "ipython3": "python",
    "sh": "bash",
    "shell": "bash",
    "shell-session": "console",
}
# Languages a bare class may name (the usual highlighter names). A class is only read as a
# language on the <pre> itself or its <code>, where generators put the declaration.
KNOWN_LANGUAGES = frozenset(
    (
        "ada",
        "apache",
        "applescript",
        "asm",
        "awk",
        "bash",
        "basic",
        "bat",
        "batch",
        "c",
        "clojure",
        "cmake",
        "cobol",
        "coffeescript",
        "console",
        "cpp",
        "crystal",
        "csharp",
        "css",
        "cuda",
        "d",
        "dart",
        "diff",
        "django",
        "dockerfile",
        "elisp",
        "elixir",
        "elm",
        "emacs-lisp",
        "erb",
        "erlang",
        "fish",
        "fortran",
        "fsharp",
        "gdscript",
        "glsl",
        "go",
        "gradle",
        "graphql",
        "groovy",
        "haml",
        "haskell",
        "hcl",
        "html",
        "http",
        "ini",
        "java",
        "javascript",
        "jinja",
        "json",
        "json5",
        "jsx",
        "julia",
        "kotlin",
        "latex",
        "less",
        "lisp",
        "lua",
        "make",
        "makefile",
        "markdown",
        "matlab",
        "nginx",
        "nim",
        "nix",
        "objective-c",
        "ocaml",
        "pascal",
        "perl",
        "php",
        "powershell",
        "prolog",
        "protobuf",
        "pycon",
        "pytb",
        "python",
        "qml",
        "r",
        "racket",
        "rst",
        "ruby",
        "rust",
        "sass",
        "scala",
        "scheme",
        "scss",
        "shell",
        "smalltalk",
        "sql",
        "swift",
        "tcl",
        "tex",
        "toml",
        "tsx",
        "typescript",
        "vb",
        "vbnet",
        "verilog",
        "vhdl",
        "vim",
        "wasm",
        "xml",
        "xquery",
        "yaml",
        "zig",
        # other usual spellings of the names above
        *("js", "ts", "rb", "yml", "golang", "hs", "ml", "rs", "kt", "cs", "objc", "c++", "cxx"),
        *("py", "py3", "python3", "sh", "zsh", "postgresql", "psql", "html5", "xhtml"),
    )
)
_WRAPPER_DEPTH = 3  # Sphinx: div.highlight-X > div.highlight > pre


def normalise(name: str) -> str:
    """A language name in its usual spelling (``py`` -> ``python``); "" for no language."""
    name = name.strip().strip(";,").lower()
    if name in _NO_LANGUAGE:
        return ""
    return _ALIASES.get(name, name)


def _declared(element: Any, *, bare: bool) -> str | None:
    """What ``element`` declares: a language, "" for "none", None when it says nothing."""
    for attribute in ("data-lang", "data-language"):
        if value := element.get(attribute):
            return normalise(value)
    classes = (element.get("class") or "").split()
    for position, name in enumerate(classes):
        if found := _PREFIXED.match(name):
            return normalise(found.group(1))
        if name.lower() == "brush:" and position + 1 < len(classes):
            return normalise(classes[position + 1])
        if name.lower().startswith("brush:") and len(name) > len("brush:"):
            return normalise(name[len("brush:") :])
    if bare:
        for name in classes:
            if name.lower() in KNOWN_LANGUAGES:
                return normalise(name)
    return None


def code_language(pre: Any) -> str:
    """The language ``pre`` declares (on itself, its ``<code>`` or up to three wrappers), or ""."""
    for element in (pre, *pre.iterchildren("code")):
        found = _declared(element, bare=True)
        if found is not None:
            return found
    parent = pre.getparent()
    for _ in range(_WRAPPER_DEPTH):
        if parent is None or parent.tag in ("body", "main", "article", "section"):
            break
        found = _declared(parent, bare=False)
        if found is not None:
            return found
        parent = parent.getparent()
    return ""
