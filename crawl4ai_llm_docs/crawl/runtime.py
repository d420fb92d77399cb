"""Where crawl4ai keeps its files, fixed before crawl4ai is first imported.

crawl4ai reads ``CRAWL4_AI_BASE_DIRECTORY`` at import time and creates ``.crawl4ai`` there
(the home directory by default), so every module imports crawl4ai lazily, after this ran.
"""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs

from crawl4ai_llm_docs.config import APP_NAME

BASE_DIR_ENV = "CRAWL4_AI_BASE_DIRECTORY"


def prepare_crawl4ai(cache_dir: Path | None = None) -> Path:
    """Point crawl4ai at the tool's cache directory (unless the user chose one) and silence it.

    Returns crawl4ai's base directory. Only the first call before the import matters.
    """
    if BASE_DIR_ENV not in os.environ:
        root = cache_dir if cache_dir is not None else Path(platformdirs.user_cache_dir(APP_NAME))
        os.environ[BASE_DIR_ENV] = str(root / "crawl4ai")
    # crawl4ai prints an advert for its hosted service once a day otherwise.
    os.environ.setdefault("CRAWL4AI_NO_CLOUD_NOTICE", "1")
    return Path(os.environ[BASE_DIR_ENV])
