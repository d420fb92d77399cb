"""Configuration schema: the typed sections, their defaults and their constraints.

Build an ``AppConfig`` only through ``msgspec.convert`` (``config.load_config`` does): the
``Meta`` constraints are checked there, not by ``__init__``. Every key is documented in
``defaults.toml``; loading, layering and error messages live in ``config.py``.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import urlsplit

import msgspec
import platformdirs
from msgspec import Meta, Struct

APP_NAME = "crawl4ai-llm-docs"
ENV_PREFIX = "CRAWL4AI_LLM_DOCS_"
PROJECT_FILE_NAME = "crawl4ai-llm-docs.toml"
DEFAULTS_ORIGIN = "default"
# The bearer token of `serve --http`: a credential, so never a setting (and never in a file).
SERVE_TOKEN_ENV = f"{ENV_PREFIX}SERVE_TOKEN"
INDEX_FILE_NAME = "docs-index.sqlite"
# A docs set's name: a slug, safe as the SET of docs://SET/PATH ("python-3.11", "trio").
DOCS_SET_PATTERN = r"^[a-z0-9](?:[a-z0-9._-]{0,62}[a-z0-9])?$"
DOCS_SET_RULE = (
    "a slug of lower-case letters, digits, '.', '_' and '-' (at most 64 characters, starting "
    "and ending with a letter or digit)"
)

# Settings that decide where a secret goes. A project file in the working directory (anyone
# can leave one in a checkout) may set them only when the user trusts it: the flag
# --trust-project-config, or ``trust_project_config = true`` in the user file. A credential
# setting added later is one more line here.
# Keys whose values are credentials for crawled sites (or name the variables and files that
# hold them): redacted wherever settings are shown, and never shown in an error.
CREDENTIAL_KEYS: tuple[str, ...] = ("crawl.auth",)
SECRET_ROUTING_KEYS: tuple[str, ...] = (
    "llm.base_url",  # where the API key is sent
    "llm.api_key_env",  # which environment variable's secret is sent
    *CREDENTIAL_KEYS,  # which headers, cookies and variables go to which site
)
TRUST_KEY = "trust_project_config"  # the one top-level key, outside every [section]

Percent = Annotated[float, Meta(ge=0, le=100)]
Seconds = Annotated[float, Meta(gt=0, le=3600)]


class Base(Struct, kw_only=True, forbid_unknown_fields=True, frozen=True):
    pass


class LLMConfig(Base, frozen=True):
    base_url: Annotated[str, Meta(pattern=r"^https?://\S+$")] = "https://api.openai.com/v1"
    model: Annotated[str, Meta(min_length=1)] = "gpt-4o-mini"
    api_key_env: Annotated[str, Meta(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")] = "OPENAI_API_KEY"
    max_tokens: Annotated[int, Meta(ge=1, le=200_000)] = 4096
    temperature: Annotated[float, Meta(ge=0, le=2)] = 0.1
    # Edit mode's chunk: with the prompt, line numbers and script it fits a model of 8k context
    # even when its tokenizer counts ~40% more than tiktoken (6,000 overflowed SmolLM2's 8,192).
    chunk_max_tokens: Annotated[int, Meta(ge=256, le=200_000)] = 4000
    chunk_min_tokens: Annotated[int, Meta(ge=64, le=100_000)] = 500
    min_output_ratio: Annotated[float, Meta(ge=0, le=1)] = 0.35
    max_retries: Annotated[int, Meta(ge=0, le=20)] = 6
    verify_tls: bool = True
    input_price_per_mtok: Annotated[float, Meta(ge=0)] = 0.0
    output_price_per_mtok: Annotated[float, Meta(ge=0)] = 0.0
    system_prompt: Annotated[str, Meta(min_length=1)] = "Clean this documentation page."
    user_prompt: Annotated[str, Meta(min_length=1)] = "<document>\n{content}\n</document>"
    # Faithfulness check (llm/faithful.py) and what happens to an answer that fails it.
    max_output_ratio: Annotated[float, Meta(ge=1, le=100)] = 3.0
    min_inline_code_kept: Annotated[float, Meta(ge=0, le=1)] = 0.8
    max_invented_code: Annotated[int, Meta(ge=0, le=1000)] = 0
    min_structure_kept: Annotated[float, Meta(ge=0, le=1)] = 0.7
    min_text_kept: Annotated[float, Meta(ge=0, le=1)] = 0.7
    max_repeats: Annotated[int, Meta(ge=1, le=1000)] = 3
    unfaithful_retries: Annotated[int, Meta(ge=0, le=5)] = 1
    # Batch mode (issue 19): the OpenAI Batch API instead of live requests.
    mode: Literal["live", "batch"] = "live"
    batch_fallback: Literal["batch", "live"] = "batch"
    batch_poll_initial_s: Seconds = 5.0
    batch_poll_max_s: Seconds = 60.0
    stream: bool = True
    # Edit-script cleaning (issue 27): the model names lines to drop, re-level and join. The
    # default: it kept the fidelity oracle's every check at least as well as rewrites did.
    cleaning: Literal["rewrite", "edit"] = "edit"
    edit_max_tokens: Annotated[int, Meta(ge=16, le=200_000)] = 512
    edit_system_prompt: Annotated[str, Meta(min_length=1)] = "Answer with a JSON edit script."

    def __post_init__(self) -> None:
        if self.chunk_min_tokens > self.chunk_max_tokens:
            raise ValueError(
                f"llm.chunk_min_tokens ({self.chunk_min_tokens}) must not exceed "
                f"llm.chunk_max_tokens ({self.chunk_max_tokens})"
            )
        if "{content}" not in self.user_prompt:
            raise ValueError("llm.user_prompt must contain the placeholder {content}")
        if self.batch_poll_initial_s > self.batch_poll_max_s:
            raise ValueError(
                f"llm.batch_poll_initial_s ({self.batch_poll_initial_s:g}) must not exceed "
                f"llm.batch_poll_max_s ({self.batch_poll_max_s:g})"
            )


_ORIGIN = re.compile(r"^https?://[^/?#@\s]+/?$", re.IGNORECASE)
_DEFAULT_PORTS = {"http": 80, "https": 443}
_HEADER_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")  # an HTTP token (RFC 9110)
_BAD_HEADER_VALUE = re.compile(r"[\r\n\x00]")
_FIXED_HEADERS = frozenset({"host", "content-length", "transfer-encoding", "connection"})


def origin_key(scheme: str, host: str, port: int | None) -> str:
    """One spelling per origin: lower case, the default port left out."""
    scheme, host = scheme.lower(), host.lower().rstrip(".")
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"  # an IPv6 address, as it is written in a URL
    if port is None or port == _DEFAULT_PORTS.get(scheme):
        return f"{scheme}://{host}"
    return f"{scheme}://{host}:{port}"


class AuthEntry(Base, frozen=True):
    """Credentials for one origin of a private documentation site (``[[crawl.auth]]``).

    Sent only to requests whose origin (scheme, host, port) is exactly ``origin``. String
    values may name environment variables (``"Bearer ${DOCS_TOKEN}"``), read at start-up.
    """

    origin: str
    headers: dict[str, str] = msgspec.field(default_factory=dict)
    cookies_file: str = ""  # Netscape cookies.txt (curl, yt-dlp, browser extensions)
    storage_state: str = ""  # Playwright storage-state JSON: cookies and localStorage

    def key(self) -> str | None:
        """The origin in one spelling (``origin_key``); None when it is not an origin."""
        if not _ORIGIN.match(self.origin):
            return None
        parts = urlsplit(self.origin)
        try:
            port = parts.port
        except ValueError:
            return None
        if not parts.hostname:
            return None
        return origin_key(parts.scheme, parts.hostname, port)

    def __post_init__(self) -> None:
        # Messages name the origin and header names, never a header's value.
        if self.key() is None:
            raise ValueError(
                f"crawl.auth origin {self.origin!r} must be scheme://host[:port] "
                '(http or https, no path), e.g. "https://docs.example.com"'
            )
        for name, value in self.headers.items():
            if not _HEADER_NAME.match(name) or name.lower() in _FIXED_HEADERS:
                raise ValueError(
                    f"crawl.auth header name {name!r} (origin {self.origin}) is not a header "
                    "that can be sent: use a plain HTTP header name such as Authorization"
                )
            if _BAD_HEADER_VALUE.search(value):
                raise ValueError(
                    f"crawl.auth header {name} (origin {self.origin}) has a line break or NUL "
                    "in its value"
                )
        if not (self.headers or self.cookies_file or self.storage_state):
            raise ValueError(
                f"crawl.auth entry for {self.origin} sends nothing: give headers, "
                "cookies_file or storage_state"
            )


class CrawlConfig(Base, frozen=True):
    mode: Literal["auto", "http", "browser"] = "auto"
    max_concurrent: Annotated[int, Meta(ge=1, le=16)] = 4
    page_timeout: Annotated[float, Meta(gt=0, le=600)] = 30.0
    retries: Annotated[int, Meta(ge=0, le=10)] = 2
    css_selector: str = ""
    browser_path: str = ""
    js_shell_min_words: Annotated[int, Meta(ge=0)] = 40
    max_page_bytes: Annotated[int, Meta(ge=1_000, le=500_000_000)] = 20_000_000
    verify_tls: bool = True
    user_agent: Annotated[str, Meta(min_length=1)] = "crawl4ai-llm-docs"
    refresh: Literal["changed", "full"] = "changed"
    # Markdown first (crawl/alternate.py): the Markdown a page offers instead of its HTML.
    prefer_markdown: Literal["auto", "never", "always"] = "auto"
    auth: list[AuthEntry] = msgspec.field(default_factory=list)

    def __post_init__(self) -> None:
        seen: set[str] = set()
        for entry in self.auth:
            origin = entry.key() or entry.origin
            if origin in seen:
                raise ValueError(
                    f"crawl.auth has two entries for {entry.origin}: merge them into one"
                )
            seen.add(origin)


class ParallelConfig(Base, frozen=True):
    enable_parallel_processing: bool = True
    max_concurrent_requests: Annotated[int, Meta(ge=1, le=20)] = 4
    enable_adaptive_rate_limiting: bool = True
    rate_limit_buffer_percent: Percent = 10.0
    progress_update_interval: Annotated[int, Meta(ge=1, le=60)] = 5
    enable_session_pooling: bool = True
    max_connections_per_host: Annotated[int, Meta(ge=1, le=100)] = 20
    request_timeout: Seconds = 120.0
    enable_circuit_breaker: bool = True
    error_threshold_percent: Percent = 50.0
    requests_per_minute: Annotated[int, Meta(ge=0)] = 0
    tokens_per_minute: Annotated[int, Meta(ge=0)] = 0
    first_token_timeout: Seconds = 120.0
    idle_timeout: Seconds = 30.0
    queue_aware_concurrency: bool = True

    @property
    def effective_max_concurrent_requests(self) -> int:
        """Sequential mode is the same pipeline with every limit at 1."""
        return self.max_concurrent_requests if self.enable_parallel_processing else 1


class OutputConfig(Base, frozen=True):
    path: str = ""
    llms_txt_dir: str = ""
    llms_txt_per_section: bool = False
    title: str = ""
    report: bool = True
    cache: bool = True
    cache_dir: str = ""
    pages_dir: str = ""
    max_file_tokens: Annotated[int, Meta(ge=0)] = 0
    # The docs index (search/): searchable by `search` and by agents through `serve`.
    index: bool = True
    index_path: str = ""
    docs_set: Annotated[str, Meta(pattern=f"{DOCS_SET_PATTERN}|^$")] = ""
    chunks_jsonl: str = ""
    # --pages-dir file names: page.md replaces the page's extension (guide/install.md);
    # page.html.md appends .md to the URL's path (guide/install.html.md), as llms.txt does.
    pages_naming: Literal["page.md", "page.html.md"] = "page.md"


class LoggingConfig(Base, frozen=True):
    level: Literal["debug", "info", "warning", "error"] = "info"
    json_file: str = ""
    progress: bool = True


DiscoverSource = Literal["llms-txt", "sitemap", "links"]


class DiscoverConfig(Base, frozen=True):
    """Discovery from root URLs (``crawl4ai-llm-docs ROOT`` and ``map``)."""

    max_pages: Annotated[int, Meta(ge=1, le=10_000_000)] = 500
    max_depth: Annotated[int, Meta(ge=0, le=1_000)] = 0  # 0: no limit
    include: list[str] = msgspec.field(default_factory=list)
    exclude: list[str] = msgspec.field(default_factory=list)
    whole_site: bool = False
    sources: list[DiscoverSource] = msgspec.field(
        default_factory=lambda: ["llms-txt", "sitemap", "links"]
    )
    respect_robots: bool = True
    max_sitemaps: Annotated[int, Meta(ge=0, le=10_000)] = 50
    sources_timeout: Seconds = 30.0  # llms.txt and sitemaps, all together


class AppConfig(Base, frozen=True):
    trust_project_config: bool = False
    llm: LLMConfig = LLMConfig()
    crawl: CrawlConfig = CrawlConfig()
    parallel: ParallelConfig = ParallelConfig()
    output: OutputConfig = OutputConfig()
    logging: LoggingConfig = LoggingConfig()
    discover: DiscoverConfig = DiscoverConfig()

    @property
    def parallel_processing(self) -> ParallelConfig:
        """The specification's name for the ``[parallel]`` section."""
        return self.parallel

    def api_key(self) -> str | None:
        """The API key from the environment; callers must never print or log it."""
        return os.environ.get(self.llm.api_key_env) or None

    def cache_directory(self) -> Path:
        if self.output.cache_dir:
            return Path(self.output.cache_dir).expanduser()
        return Path(platformdirs.user_cache_dir(APP_NAME))

    def index_file(self) -> Path:
        """The docs index: ``output.index_path``, else in the user data directory."""
        if self.output.index_path:
            return Path(self.output.index_path).expanduser()
        return Path(platformdirs.user_data_dir(APP_NAME)) / INDEX_FILE_NAME


SECTIONS: dict[str, type[Base]] = {
    "llm": LLMConfig,
    "crawl": CrawlConfig,
    "parallel": ParallelConfig,
    "output": OutputConfig,
    "logging": LoggingConfig,
    "discover": DiscoverConfig,
}

# Flat key -> origin, e.g. {"parallel.max_concurrent_requests": "env CRAWL4AI_..."}
Origins = dict[str, str]


class LoadedConfig(msgspec.Struct, frozen=True):
    config: AppConfig
    origins: Origins
    files: tuple[Path, ...]
    # SECRET_ROUTING_KEYS an untrusted project file changed (commands that send no secret
    # load it anyway; the others are refused before this is built).
    untrusted: tuple[str, ...] = ()
