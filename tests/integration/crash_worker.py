"""The background worker that ``test_worker_crash`` kills: run as a subprocess.

It is the real ``Worker`` (recovery first, then rounds of ``Platform.work()``)
over the database that ``MONETISE_HOME`` and ``MONETISE_DATABASE_URL`` name,
with two changes that only move time, so that a test can wait for them:

- the dispatcher's network time-out and recovery grace are seconds, not the
  production ten minutes and one minute;
- every hand-over (a network request submitted, a message sent) is paced by
  ``--pace`` seconds, as a slow network or gateway would be, so that a test
  polling from outside can kill the worker while a batch is half handed over;
  so is each file that the outbox's helper process puts in place for a batch
  of messages (``tests/integration/paced_files.py``).

    python -m tests.integration.crash_worker --network-timeout 5 \
        --recovery-grace 5 --pace 0.01
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import time
from collections.abc import Callable
from datetime import timedelta
from functools import wraps
from typing import Any

from application.files import BatchWriter
from application.platform import Platform
from application.settings import Settings
from application.worker import Worker


def paced(hand_over: Callable[..., Any], pace: float) -> Callable[..., Any]:
    """``hand_over``, taking ``pace`` seconds longer each call."""

    @wraps(hand_over)
    def slow(*args: Any, **kwargs: Any) -> Any:
        time.sleep(pace)
        return hand_over(*args, **kwargs)

    return slow


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--network-timeout", type=float, default=5.0)
    parser.add_argument("--recovery-grace", type=float, default=5.0)
    parser.add_argument("--pace", type=float, default=0.0)
    parser.add_argument("--idle-interval", type=float, default=0.05)
    options = parser.parse_args(argv)
    logging.basicConfig(
        stream=sys.stderr,
        level=logging.INFO,
        format="%(asctime)s %(process)d %(name)s %(levelname)s %(message)s",
    )
    platform = Platform(Settings())
    dispatcher = platform.dispatcher
    dispatcher.network_timeout = timedelta(seconds=options.network_timeout)
    dispatcher.recovery_grace = timedelta(seconds=options.recovery_grace)
    if options.pace:
        network, channels = platform.network, platform.channels
        network.submit = paced(network.submit, options.pace)  # type: ignore[method-assign]
        channels.send = paced(channels.send, options.pace)  # type: ignore[method-assign]
        # Batches of messages are written by a helper process: paced there.
        channels.writer = BatchWriter(
            [sys.executable, "-m", "tests.integration.paced_files", str(options.pace)]
        )
    worker = Worker(platform, idle_interval=options.idle_interval)
    # SIGTERM stops after the round in progress; the test's kills are SIGKILL.
    signal.signal(signal.SIGTERM, lambda *_: worker.stopping.set())
    logging.getLogger("monetise.worker").info("worker started")
    try:
        worker.run()
    finally:
        platform.close()


if __name__ == "__main__":
    main()
