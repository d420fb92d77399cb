"""Configuration schema: the typed sections, their defaults and their constraints.

Build an ``AppConfig`` only through ``msgspec.convert`` (``config.load_config`` does): the
``Meta`` constraints are checked there, not by ``__init__``. Every key is documented in
``defaults.toml``; loading, layering and error messages live in ``config.py``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Literal

import msgspec
import platformdirs
from msgspec import Meta, Struct

APP_NAME = "crawl4ai-llm-docs"
ENV_PREFIX = "CRAWL4AI_LLM_DOCS_"
PROJECT_FILE_NAME = "crawl4ai-llm-docs.toml"
DEFAULTS_ORIGIN = "default"

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
    chunk_max_tokens: Annotated[int, Meta(ge=256, le=200_000)] = 6000
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
    # Edit-script cleaning (issue 27): the model names lines to drop, re-level and join.
    cleaning: Literal["rewrite", "edit"] = "rewrite"
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
    title: str = ""
    report: bool = True
    cache: bool = True
    cache_dir: str = ""
    pages_dir: str = ""
    max_file_tokens: Annotated[int, Meta(ge=0)] = 0


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


class AppConfig(Base, frozen=True):
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
