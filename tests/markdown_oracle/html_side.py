"""The HTML side: bytes decoded by the oracle's own rules, the main content, code blocks as
a browser shows them, and the languages the markup declares."""

from __future__ import annotations

import codecs
import re
from collections.abc import Iterable
from typing import Any

import lxml.etree
import lxml.html

from markdown_oracle.base import _counts_up, normalise_code

# --------------------------------------------------------------------------------------------
# HTML side

_XML_DECL = re.compile(rb"^\s*<\?xml[^>]*\?>", re.I)
_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([A-Za-z0-9_.:-]+)""", re.I)
_XML_ENCODING = re.compile(rb"""^\s*<\?xml[^>]*encoding\s*=\s*["']([A-Za-z0-9_.:-]+)""", re.I)


def decode(html_bytes: bytes) -> str:
    """Text of an HTML file: BOM, XML declaration, <meta charset>, UTF-8, then cp1252."""
    if html_bytes.startswith(codecs.BOM_UTF8):
        return html_bytes[3:].decode("utf-8", errors="replace")
    head = html_bytes[:4096]
    for pattern in (_XML_ENCODING, _META_CHARSET):
        if found := pattern.search(head):
            try:
                return html_bytes.decode(found.group(1).decode("ascii"), errors="replace")
            except LookupError:
                pass
    try:
        return html_bytes.decode("utf-8")
    except UnicodeDecodeError:
        return html_bytes.decode("cp1252", errors="replace")


def parse_html(html_bytes: bytes) -> Any:
    text = decode(html_bytes)
    text = re.sub(r"^\s*<\?xml[^>]*\?>", "", text)
    return lxml.html.document_fromstring(text or "<html></html>")


GENERIC_EXCLUDE = (
    "script, style, noscript, template, nav, button, iframe, [role=navigation], [role=search]"
)
BLOCK_TAGS = frozenset(
    [
        "address",
        "article",
        "aside",
        "blockquote",
        "body",
        "caption",
        "dd",
        "details",
        "dialog",
        "div",
        "dl",
        "dt",
        "fieldset",
        "figcaption",
        "figure",
        "footer",
        "form",
        "h1",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
        "header",
        "hr",
        "html",
        "li",
        "main",
        "nav",
        "ol",
        "p",
        "pre",
        "section",
        "summary",
        "table",
        "tbody",
        "td",
        "tfoot",
        "th",
        "thead",
        "tr",
        "ul",
        "center",
    ]
)
INLINE_CODE_TAGS = ("code", "tt", "kbd", "samp")


def _classes(el: Any) -> list[str]:
    return (el.get("class") or "").split()


def main_elements(doc: Any, main: str | None, exclude: str | None) -> tuple[list[Any], set[Any]]:
    """The main content roots and the set of elements excluded inside them."""
    roots: list[Any] = []
    if main:
        for selector in main.split("||"):
            roots = [el for el in doc.cssselect(selector.strip())]
            if roots:
                break
    if not roots:
        body = doc.find("body")
        roots = [body if body is not None else doc]
    chosen = set(roots)
    roots = [r for r in roots if not any(a in chosen for a in r.iterancestors())]
    selector = GENERIC_EXCLUDE
    if not main or roots[0].tag in ("body", "html"):
        selector += ", header, footer, aside, [role=banner], [role=contentinfo]"
    if exclude:
        selector += ", " + exclude
    excluded: set[Any] = set()
    for root in roots:
        for el in root.cssselect(selector):
            excluded.add(el)
            excluded.update(el.iterdescendants())
    return roots, excluded


def _iter_main(roots: list[Any], excluded: set[Any], *tags: str) -> Iterable[Any]:
    for root in roots:
        for el in root.iter(*tags):
            if isinstance(el.tag, str) and el not in excluded:
                yield el


_GUTTER_CLASS = re.compile(
    r"^(?:linenos?|line-?numbers?|lineno|linenodiv|listing_lines|gutter|hljs-ln-numbers|ln)$", re.I
)
_NUMBERS_ONLY = re.compile(r"^[\d\s]+$")


def _code_text(el: Any, excluded: set[Any] | frozenset = frozenset()) -> str:
    """Text of a code element without inline line-number elements or excluded parts."""
    drop = {n for n, sub in enumerate(el.iter()) if sub in excluded}
    clone = lxml.html.fromstring(lxml.html.tostring(el, with_tail=False))
    for n, sub in reversed(list(enumerate(list(clone.iter())))):
        if n in drop and sub is not clone:
            sub.drop_tree()
    for sub in list(clone.iter()):
        if (
            sub is not clone
            and isinstance(sub.tag, str)
            and any(_GUTTER_CLASS.match(c) for c in _classes(sub))
        ):
            sub.drop_tree()
    if clone.tag == "div" and "fragment" in _classes(clone):  # Doxygen: one div.line per line
        lines = [line.text_content() for line in clone.iter("div") if "line" in _classes(line)]
        return "\n".join(lines)
    for sub in list(clone.iter("summary")):  # a toggle's label (rustdoc "Show 73 methods")
        sub.drop_tree()
    for br in clone.iter("br"):
        br.tail = "\n" + (br.tail or "")
    for sub in clone.iter("div", "p"):  # a block inside <pre> is a line of its own
        if sub is not clone and not (sub.tail or "").startswith("\n"):
            sub.tail = "\n" + (sub.tail or "")
    return clone.text_content()


def _is_gutter(pre: Any, text: str) -> bool:
    if any(_GUTTER_CLASS.match(c) for c in _classes(pre)):
        return True
    parent = pre.getparent()
    if parent is not None and any(_GUTTER_CLASS.match(c) for c in _classes(parent)):
        return True
    # Numbers counting up in a table cell beside a cell of code.
    cell = next((a for a in pre.iterancestors() if a.tag in ("td", "th")), None)
    single = text.strip().isdigit()  # a one-line listing's gutter: "38"
    if cell is None or not (_counts_up(text) or single) or cell.getparent() is None:
        return False
    return any(other is not cell and other.find(".//pre") is not None for other in cell.getparent())


def html_code_blocks(roots: list[Any], excluded: set[Any]) -> list[tuple[Any, str]]:
    blocks = []
    for el in _iter_main(roots, excluded, "pre", "div"):
        if el.tag == "div" and "fragment" not in _classes(el):
            continue
        if any(
            a.tag == "pre" or (a.tag == "div" and "fragment" in _classes(a))
            for a in el.iterancestors()
        ):
            continue
        text = normalise_code(_code_text(el, excluded))
        if not text.strip() or _is_gutter(el, text):
            continue
        blocks.append((el, text))
    return blocks


# Languages -----------------------------------------------------------------------------------

KNOWN_LANGUAGES = frozenset(
    [
        "ada",
        "apache",
        "asm",
        "awk",
        "bash",
        "basic",
        "bat",
        "batch",
        "c",
        "c#",
        "c++",
        "cc",
        "clojure",
        "cmake",
        "cobol",
        "coffeescript",
        "console",
        "cpp",
        "cs",
        "csharp",
        "css",
        "csv",
        "cxx",
        "d",
        "dart",
        "diff",
        "django",
        "docker",
        "dockerfile",
        "doscon",
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
        "gherkin",
        "glsl",
        "go",
        "golang",
        "gradle",
        "graphql",
        "groovy",
        "haml",
        "haskell",
        "hcl",
        "hs",
        "html",
        "http",
        "ini",
        "java",
        "javascript",
        "jinja",
        "js",
        "json",
        "json5",
        "jsonc",
        "jsx",
        "julia",
        "kotlin",
        "latex",
        "less",
        "lisp",
        "llvm",
        "lua",
        "m4",
        "make",
        "makefile",
        "markdown",
        "matlab",
        "md",
        "nasm",
        "nginx",
        "nim",
        "nix",
        "objc",
        "objective-c",
        "objectivec",
        "ocaml",
        "perl",
        "php",
        "pl",
        "plpgsql",
        "postgresql",
        "powershell",
        "protobuf",
        "ps1",
        "psql",
        "pycon",
        "pytb",
        "python",
        "python3",
        "py",
        "py3",
        "qml",
        "r",
        "racket",
        "rb",
        "regex",
        "rst",
        "ruby",
        "rs",
        "rust",
        "sass",
        "scala",
        "scheme",
        "scss",
        "sed",
        "sh",
        "shell",
        "shell-session",
        "sql",
        "sqlite",
        "swift",
        "systemd",
        "tcl",
        "tex",
        "toml",
        "ts",
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
        "xslt",
        "yaml",
        "yml",
        "zig",
        "zsh",
        "texinfo",
    ]
)
NO_LANGUAGE = frozenset(
    ["none", "text", "plain", "plaintext", "txt", "nohighlight", "no-highlight", "default"]
)
LANGUAGE_EQUIVALENTS = {
    "py": "python",
    "py3": "python",
    "python3": "python",
    "ipython": "python",
    "ipython3": "python",
    "sh": "bash",
    "shell": "bash",
    "zsh": "bash",
    "shell-session": "console",
    "sh-session": "console",
    "shellsession": "console",
    "c++": "cpp",
    "cxx": "cpp",
    "cc": "cpp",
    "js": "javascript",
    "ts": "typescript",
    "yml": "yaml",
    "rb": "ruby",
    "rs": "rust",
    "hs": "haskell",
    "ml": "ocaml",
    "md": "markdown",
    "golang": "go",
    "cs": "csharp",
    "c#": "csharp",
    "objectivec": "objc",
    "objective-c": "objc",
    "makefile": "make",
    "ps1": "powershell",
    "emacs-lisp": "elisp",
    "tex": "latex",
    "docker": "dockerfile",
    "psql": "postgresql",
    "batch": "bat",
    "json5": "json",
    "jsonc": "json",
}
_PREFIXED = re.compile(r"^(?:language|lang|highlight|brush|source|code)[-:_]([\w+#.-]+)$", re.I)
_BRUSH = re.compile(r"brush:\s*([\w+#.-]+)", re.I)


def canonical_language(name: str) -> str:
    name = name.strip().strip("{}.").lower()
    return LANGUAGE_EQUIVALENTS.get(name, name)


def _language_of(el: Any) -> str | None:
    """'' for 'declared as none/default', a name, or None when this element says nothing."""
    for attribute in ("data-lang", "data-language", "lang-name"):
        if value := (el.get(attribute) or "").strip():
            value = value.lower()
            return "" if value in NO_LANGUAGE else canonical_language(value)
    raw = el.get("class") or ""
    if found := _BRUSH.search(raw):
        return canonical_language(found.group(1))
    for token in raw.split():
        if found := _PREFIXED.match(token):
            value = found.group(1).lower()
            return "" if value in NO_LANGUAGE else canonical_language(value)
    for token in raw.split():
        if token.lower() in KNOWN_LANGUAGES:
            return canonical_language(token)
    return None


def declared_language(pre: Any) -> str | None:
    """The HTML's declared language of a code block: a name, '' (declared none/default), None."""
    candidates = [*pre.findall("code"), pre]
    parent = pre.getparent()
    for _ in range(3):
        if parent is None or parent.tag not in ("div", "span", "figure", "section", "td"):
            break
        candidates.append(parent)
        parent = parent.getparent()
    for el in candidates:
        found = _language_of(el)
        if found is not None:
            return found
    return None
