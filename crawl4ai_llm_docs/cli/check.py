"""``crawl4ai-llm-docs check``: one tiny request to the provider, then 2 and 4 at once."""

from __future__ import annotations

from typing import Annotated

from cyclopts import Parameter

from crawl4ai_llm_docs.cli.flags import (
    PROVIDER,
    ConfigFile,
    TrustProjectConfig,
    flag_overrides,
    trust_override,
)
from crawl4ai_llm_docs.config import load_config


async def check(
    *,
    config: ConfigFile = None,
    trust_project_config: TrustProjectConfig = False,
    base_url: Annotated[
        str | None,
        Parameter(
            name="--base-url",
            group=PROVIDER,
            help="OpenAI-compatible API base URL [default: $OPENAI_BASE_URL or OpenAI's].",
        ),
    ] = None,
    model: Annotated[
        str | None,
        Parameter(name="--model", group=PROVIDER, help="Model name [default: gpt-4o-mini]."),
    ] = None,
    insecure: Annotated[
        bool,
        Parameter(
            name="--insecure",
            negative="",
            group=PROVIDER,
            help="Do not verify the provider's TLS certificate. Only for trusted local setups.",
        ),
    ] = False,
) -> int:
    """Check the LLM settings: one tiny request, then 2 and 4 at once. Reports latency, model,
    advertised rate limits, whether the server queues requests, and a suggested
    max_concurrent_requests."""
    from crawl4ai_llm_docs.llm.provider.check import check_provider, render

    overrides = flag_overrides(
        base_url=("llm.base_url", "--base-url", base_url),
        model=("llm.model", "--model", model),
        insecure=("llm.verify_tls", "--insecure", False if insecure else None),
    ) | trust_override(trust_project_config)
    loaded = load_config(config_file=config, overrides=overrides)
    result = await check_provider(loaded.config, api_key=loaded.config.api_key())
    print(render(result))
    return 0 if result.ok else 1
