"""Ctrl-C and SIGTERM for the commands that run until stopped.

The first Ctrl-C (or a SIGTERM, as a service manager sends) asks the work to
stop: the round, file or message in hand is finished and recorded, then the
command exits 0. A second Ctrl-C interrupts whatever is running.

Left to Python's default, Ctrl-C raised ``KeyboardInterrupt`` wherever the
process was: between sending a message and recording it, or half way
through a round of the views. And CPython 3.11 exits with SIGINT (status
-2, no traceback) when the interrupt lands in code it runs from a string
(``exec``, ``eval``, as ``namedtuple`` does), even if the command then
catches the ``KeyboardInterrupt``: `monetise projections follow` stopped so
once in forty times under load.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def stopped_by_signals() -> Iterator[threading.Event]:
    """An event that Ctrl-C and SIGTERM set within the block (the block's loop
    ends once the work in hand is done); a second Ctrl-C raises
    ``KeyboardInterrupt``. The handlers before are restored at the end."""
    stop = threading.Event()

    def finish(signum: int, _: object) -> None:
        stop.set()
        signal.signal(signal.SIGINT, signal.default_int_handler)

    previous = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    signal.signal(signal.SIGINT, finish)
    signal.signal(signal.SIGTERM, finish)
    try:
        yield stop
    finally:
        signal.signal(signal.SIGINT, previous[0])
        signal.signal(signal.SIGTERM, previous[1])
