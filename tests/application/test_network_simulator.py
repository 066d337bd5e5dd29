"""The network simulator on SQLite and PostgreSQL: outcomes, delays, durability."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from application.network import (
    NetworkPort,
    NetworkSimulator,
    ProvisioningRequest,
    ProvisioningResponse,
    SimulatorRule,
)
from application.persistence import Database, database
from application.settings import Settings

T0 = datetime(2024, 5, 1, 9, 0, tzinfo=UTC)
LATER = T0 + timedelta(days=1)
PORTED = "447700900999"


def request(
    item_id: str = "item-1",
    attempt: int = 1,
    command: str = "ACTIVATE",
    msisdn: str | None = "447700900123",
    at: datetime = T0,
) -> ProvisioningRequest:
    return ProvisioningRequest(
        request_id=f"{item_id}:{attempt}",
        item_id=item_id,
        command=command,
        parameters={"profile": "default", "apn": ["internet", "ims"]},
        msisdn=msisdn,
        imsi="234150999999999",
        submitted_at=at,
    )


def outcomes(responses: list[ProvisioningResponse]) -> list[tuple[str, str]]:
    return [(response.request_id, response.outcome) for response in responses]


@pytest.fixture
def db(settings: Settings) -> Database:
    return database(settings)


@pytest.fixture
def simulator(db: Database) -> Iterator[NetworkSimulator]:
    simulator = NetworkSimulator(db)
    yield simulator
    simulator.close()


def test_the_simulator_is_a_network_port(simulator: NetworkSimulator) -> None:
    port: NetworkPort = simulator

    port.submit(request())

    assert outcomes(port.responses(LATER)) == [("item-1:1", "success")]


def test_without_rules_every_command_succeeds_at_once(
    simulator: NetworkSimulator,
) -> None:
    simulator.submit(request("item-1", command="ACTIVATE"))
    simulator.submit(request("item-2", command="PORT_IN", msisdn=None))

    [first, second] = simulator.responses(T0)

    assert (first.request_id, first.item_id, first.outcome) == (
        "item-1:1",
        "item-1",
        "success",
    )
    assert first.responded_at == T0
    assert "ACTIVATE" in first.reason
    assert (second.request_id, second.outcome) == ("item-2:1", "success")


def test_an_item_fails_twice_then_succeeds_on_its_third_request(
    db: Database,
) -> None:
    simulator = NetworkSimulator(
        db, [SimulatorRule(outcomes=("error", "error", "success"), reason="busy")]
    )
    try:
        for attempt in (1, 2, 3):
            simulator.submit(request("item-1", attempt))
        simulator.submit(request("item-2", 1))

        responses = simulator.responses(T0)
    finally:
        simulator.close()

    assert outcomes(responses) == [
        ("item-1:1", "error"),
        ("item-1:2", "error"),
        ("item-1:3", "success"),
        ("item-2:1", "error"),
    ]
    assert responses[0].reason == "busy"


def test_a_rule_with_one_error_outcome_always_fails(db: Database) -> None:
    simulator = NetworkSimulator(db, [SimulatorRule(outcomes=("error",))])
    try:
        for attempt in range(1, 6):
            simulator.submit(request("item-1", attempt))

        responses = simulator.responses(T0)
    finally:
        simulator.close()

    assert {response.outcome for response in responses} == {"error"}
    assert len(responses) == 5
    assert responses[0].reason == "simulated network error"


def test_the_most_specific_matching_rule_decides(db: Database) -> None:
    simulator = NetworkSimulator(
        db,
        [
            SimulatorRule(outcomes=("error",), reason="any"),
            SimulatorRule(command="PORT_IN", outcomes=("success",)),
            SimulatorRule(msisdn=PORTED, outcomes=("error",), reason="this number"),
            SimulatorRule(
                command="PORT_IN", msisdn=PORTED, outcomes=("error",), reason="both"
            ),
        ],
    )
    try:
        simulator.submit(request("a", command="PORT_IN", msisdn=PORTED))
        simulator.submit(request("b", command="ACTIVATE", msisdn=PORTED))
        simulator.submit(request("c", command="PORT_IN", msisdn="447700900123"))
        simulator.submit(request("d", command="ACTIVATE", msisdn=None))

        reasons = {
            response.item_id: (response.outcome, response.reason)
            for response in simulator.responses(T0)
        }
    finally:
        simulator.close()

    assert reasons["a"] == ("error", "both")
    assert reasons["b"] == ("error", "this number")
    assert reasons["c"][0] == "success"
    assert reasons["d"] == ("error", "any")


def test_a_delayed_response_is_available_only_from_submission_plus_delay(
    db: Database,
) -> None:
    simulator = NetworkSimulator(db, [SimulatorRule(delay=timedelta(seconds=5))])
    try:
        simulator.submit(request(at=T0))

        before = simulator.responses(T0 + timedelta(seconds=4, microseconds=999_999))
        at = simulator.responses(T0 + timedelta(seconds=5))
        after = simulator.responses(T0 + timedelta(hours=1))
    finally:
        simulator.close()

    assert before == []
    assert outcomes(at) == [("item-1:1", "success")]
    assert at[0].responded_at == T0 + timedelta(seconds=5)
    assert outcomes(after) == [("item-1:1", "success")]


def test_responses_come_in_the_order_they_became_available(db: Database) -> None:
    simulator = NetworkSimulator(
        db, [SimulatorRule(command="SLOW", delay=timedelta(minutes=10))]
    )
    try:
        simulator.submit(request("slow", command="SLOW", at=T0))
        simulator.submit(request("fast", command="FAST", at=T0 + timedelta(minutes=1)))

        responses = simulator.responses(LATER)
        first_only = simulator.responses(LATER, limit=1)
    finally:
        simulator.close()

    assert [response.item_id for response in responses] == ["fast", "slow"]
    assert [response.item_id for response in first_only] == ["fast"]


def test_times_in_another_zone_compare_as_the_same_instant(
    simulator: NetworkSimulator,
) -> None:
    plus_two = timezone(timedelta(hours=2))
    simulator.submit(request(at=T0.astimezone(plus_two)))

    assert simulator.responses(T0 - timedelta(microseconds=1)) == []
    [response] = simulator.responses(T0.astimezone(plus_two))
    assert response.responded_at == T0
    assert response.responded_at.utcoffset() == timedelta(0)


def test_a_naive_time_is_refused(simulator: NetworkSimulator) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        simulator.submit(request(at=datetime(2024, 5, 1, 9, 0)))  # noqa: DTZ001


def test_a_resubmitted_request_is_not_executed_again(db: Database) -> None:
    simulator = NetworkSimulator(db, [SimulatorRule(outcomes=("error", "success"))])
    try:
        simulator.submit(request("item-1", 1))
        simulator.submit(request("item-1", 1))
        simulator.submit(request("item-1", 1, at=LATER))
        simulator.submit(request("item-1", 2))

        responses = simulator.responses(LATER)
        counts = simulator.submission_counts()
    finally:
        simulator.close()

    # The resubmissions neither answered again nor used up the "error" outcome.
    assert outcomes(responses) == [("item-1:1", "error"), ("item-1:2", "success")]
    assert responses[0].responded_at == T0
    assert counts == {"item-1:1": 3, "item-1:2": 1}


def test_responses_survive_a_new_simulator_over_the_same_database(
    db: Database,
) -> None:
    first = NetworkSimulator(db, [SimulatorRule(outcomes=("error", "success"))])
    first.submit(request("item-1", 1))
    first.close()

    reopened = NetworkSimulator(db)  # no rules: would succeed at once
    try:
        reopened.submit(request("item-1", 1))
        reopened.submit(request("item-1", 2))

        responses = reopened.responses(T0)
        counts = reopened.submission_counts()
    finally:
        reopened.close()

    assert outcomes(responses) == [("item-1:1", "error"), ("item-1:2", "success")]
    assert counts == {"item-1:1": 2, "item-1:2": 1}


def test_acknowledged_responses_are_not_returned_again(db: Database) -> None:
    simulator = NetworkSimulator(db)
    simulator.submit(request("item-1"))
    simulator.submit(request("item-2"))

    simulator.acknowledge(["item-1:1", "item-1:1", "unknown:1"])
    simulator.close()
    reopened = NetworkSimulator(db)
    try:
        remaining = reopened.responses(LATER)
        reopened.acknowledge([])
        reopened.acknowledge([response.request_id for response in remaining])
        finally_empty = reopened.responses(LATER)
    finally:
        reopened.close()

    assert outcomes(remaining) == [("item-2:1", "success")]
    assert finally_empty == []


def test_replaced_rules_decide_only_requests_submitted_afterwards(
    simulator: NetworkSimulator,
) -> None:
    simulator.submit(request("item-1"))

    simulator.set_rules([SimulatorRule(outcomes=("error",))])
    simulator.submit(request("item-2"))

    assert outcomes(simulator.responses(T0)) == [
        ("item-1:1", "success"),
        ("item-2:1", "error"),
    ]


def test_rules_are_read_from_a_yaml_file(db: Database, tmp_path: Path) -> None:
    path = tmp_path / "network-simulator.yaml"
    path.write_text(
        "rules:\n"
        "  - {command: PORT_IN, msisdn: 447700900999, outcomes: [error],\n"
        "     delay: PT5S, reason: Number not portable}\n"
        "  - {command: ACTIVATE, outcomes: [error, success]}\n"
        "  - {outcomes: success}\n",
        encoding="utf-8",
    )

    rules = NetworkSimulator.rules_from_file(path)
    simulator = NetworkSimulator(db, rules)
    try:
        simulator.submit(request("port", command="PORT_IN", msisdn=PORTED))
        simulator.submit(request("act", 1, command="ACTIVATE"))
        simulator.submit(request("act", 2, command="ACTIVATE"))
        simulator.submit(request("other", command="SUSPEND"))

        at_once = simulator.responses(T0)
        after_delay = simulator.responses(T0 + timedelta(seconds=5))
    finally:
        simulator.close()

    assert rules[0].msisdn == PORTED
    assert outcomes(at_once) == [
        ("act:1", "error"),
        ("act:2", "success"),
        ("other:1", "success"),
    ]
    [port] = [response for response in after_delay if response.item_id == "port"]
    assert (port.outcome, port.reason) == ("error", "Number not portable")
    assert port.responded_at == T0 + timedelta(seconds=5)


def test_a_rule_with_an_unknown_outcome_is_refused() -> None:
    with pytest.raises(ValueError, match="'timeout'"):
        SimulatorRule(outcomes=("success", "timeout"))


def test_a_rules_file_with_an_unknown_field_names_it(tmp_path: Path) -> None:
    path = tmp_path / "network-simulator.yaml"
    path.write_text("rules:\n  - {command: PORT_IN, outcome: error}\n")

    with pytest.raises(ValueError, match=r"rules\[0\]: unknown field\(s\) outcome"):
        NetworkSimulator.rules_from_file(path)


def test_a_rules_file_with_a_bad_delay_says_where(tmp_path: Path) -> None:
    path = tmp_path / "network-simulator.yaml"
    path.write_text("rules:\n  - {delay: 5 seconds}\n")

    with pytest.raises(ValueError, match=r"rules\[0\]: '5 seconds' is not an ISO"):
        NetworkSimulator.rules_from_file(path)


def test_an_empty_rules_file_gives_no_rules(tmp_path: Path) -> None:
    path = tmp_path / "network-simulator.yaml"
    path.write_text("")

    assert NetworkSimulator.rules_from_file(path) == []


def test_concurrent_submissions_from_two_simulators_execute_each_request_once(
    db: Database,
) -> None:
    rule = SimulatorRule(outcomes=("error", "error", "success"))
    # Two instances: two connections, as a worker and an API process would have.
    simulators = [NetworkSimulator(db, [rule]), NetworkSimulator(db, [rule])]
    requests = [
        request(f"item-{n}", attempt) for n in range(5) for attempt in (1, 2, 3)
    ]

    def submit_all(simulator: NetworkSimulator) -> None:
        for each in requests:
            simulator.submit(each)

    try:
        threads = [
            threading.Thread(target=submit_all, args=(simulator,))
            for simulator in simulators * 2
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

        responses = simulators[0].responses(T0)
        counts = simulators[1].submission_counts()
    finally:
        for simulator in simulators:
            simulator.close()

    assert counts == {each.request_id: 4 for each in requests}
    by_item: dict[str, list[str]] = {}
    for response in responses:
        by_item.setdefault(response.item_id, []).append(response.outcome)
    # Whatever order the threads ran in, each item saw error, error, success.
    assert {item: sorted(seen) for item, seen in by_item.items()} == {
        f"item-{n}": ["error", "error", "success"] for n in range(5)
    }
