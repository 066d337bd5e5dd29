"""The background worker: the settings of the process it runs in, and what
it does when it starts."""

from __future__ import annotations

import gc
from decimal import Decimal

import pytest

from application.rerating import Rerater
from application.worker import YOUNG_COLLECTION_THRESHOLD, Worker
from tests.application.test_rerating import Died, fixed_tariffs, loaded
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


def test_a_starting_worker_closes_a_rerate_whose_process_died(
    operator: Operator,
) -> None:
    _, prepaid = loaded(operator)
    operator.platform.tariffs.import_document(fixed_tariffs(), "pricing-team")

    def dies(done: int) -> None:
        if done == 3:  # the postpaid page and the prepaid page saved
            raise Died

    with pytest.raises(Died):
        Rerater(operator.platform.usage, processes=1, page=10).rerate(
            "VOICE_NAT", None, None, "ops-1", dies
        )

    Worker(operator.platform).close_interrupted_rerates()

    operator.platform.usage_views.catch_up()
    (run,) = operator.platform.usage_views.batches.rerate_runs(10, 0)
    assert (run["status"], run["changed"]) == ("interrupted", 3)
    balance = operator.care.subscription(prepaid.subscription_id).prepaid_balance
    assert balance == Decimal("-0.4667")  # the load's -0.2583 and the rerate's
