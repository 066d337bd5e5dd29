"""How monetise's own PostgreSQL connections are set up."""

from __future__ import annotations

import json

import pytest

from application.platform import Platform


@pytest.mark.parametrize("backend", ["postgres"], indirect=True)
def test_on_postgresql_a_rerates_page_query_is_never_compiled_with_jit(
    platform: Platform,
) -> None:
    views = platform.usage_views
    views.catch_up()  # creates the usage views

    with views.db.read() as tx:
        # Every query costs more than the threshold now: with JIT on (the
        # server's default), the plan below would say how long compiling took.
        tx.execute("SELECT set_config('jit_above_cost', '0', true)")
        ((plan,),) = tx.fetch_tuples(
            "EXPLAIN (ANALYZE, FORMAT JSON) SELECT record_id, charge"
            " FROM view_rated_usage WHERE usage_class = ? AND record_id > ?"
            " ORDER BY record_id LIMIT 2000",
            ("VOICE_NAT", ""),
        )
        (jit,) = tx.fetch_tuples("SHOW jit")[0]

    if isinstance(plan, str):
        plan = json.loads(plan)
    assert "JIT" not in plan[0]
    assert jit == "off"
