"""The background worker's own settings of the process it runs in."""

from __future__ import annotations

import gc

from application.worker import YOUNG_COLLECTION_THRESHOLD, Worker
from tests.application.workflow_fixtures import Operator


def test_a_running_worker_collects_young_objects_less_often(
    operator: Operator,
) -> None:
    before = gc.get_threshold()
    gc.set_threshold(700, 10, 10)  # the interpreter's defaults
    try:
        worker = Worker(operator.platform, idle_interval=0.01)
        worker.stopping.set()
        worker.run()

        assert gc.get_threshold() == (YOUNG_COLLECTION_THRESHOLD, 10, 10)
    finally:
        gc.set_threshold(*before)
