"""``python -m crawl4ai_llm_docs``."""

import signal
import sys

if __name__ == "__main__":
    try:
        from crawl4ai_llm_docs.cli import main
    except KeyboardInterrupt:  # Ctrl-C while the imports are still loading
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        sys.exit(130)
    main()
