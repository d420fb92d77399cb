"""The package's layout holds: layers, independent stages, no import loops (``lint-imports``
checks pyproject's ``[tool.importlinter]`` contracts), and the command modules load alone."""

from __future__ import annotations

import shutil
import subprocess
import sys


def test_import_contracts_are_kept() -> None:
    lint_imports = shutil.which("lint-imports") or "lint-imports"
    done = subprocess.run([lint_imports], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "0 broken" in done.stdout


def test_a_subcommand_module_does_not_import_the_app_that_registers_it() -> None:
    """``cli/app.py`` registers ``config`` and ``batch`` lazily, by name: importing either
    module must not pull in the app (the loop there was before ``cli/flags.py``)."""
    code = (
        "import sys, crawl4ai_llm_docs.cli.config, crawl4ai_llm_docs.cli.batch; "
        "print('crawl4ai_llm_docs.cli.app' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False"
