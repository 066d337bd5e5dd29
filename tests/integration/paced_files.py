"""The outbox's helper process (``python -m application.files``), paced: each
file is put in place ``PACE`` seconds later, as on a slow disk, so that a test
can kill it half way through a batch of messages.

    python -m tests.integration.paced_files 0.05
"""

from __future__ import annotations

import sys
import time

from application import files


def main(argv: list[str] | None = None) -> None:
    pace = float((argv if argv is not None else sys.argv[1:])[0])
    rename = files._rename

    def slow_rename(temporary: str, name: str) -> None:
        time.sleep(pace)
        rename(temporary, name)

    files._rename = slow_rename
    files._serve()


if __name__ == "__main__":
    main()
