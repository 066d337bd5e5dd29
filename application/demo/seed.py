"""Demo customers, subscriptions and workflow events for `make run`.

A newcomer should see completed, scheduled and failed actioned items at once.
Seeding happens once per database: a second start finds the demo subscriptions.
"""

from __future__ import annotations

from pathlib import Path

from application.platform import Platform

FAILING_PORT_IN = "447700900003"
SIMULATOR_RULES = f"""\
# The built-in network simulator's outcomes (edit and restart to change them).
# The first matching rule decides; outcomes apply to the 1st, 2nd… attempt.
rules:
  - command: PORT_IN
    msisdn: "{FAILING_PORT_IN}"
    outcomes: [error]
    reason: donor operator refused the port (account number mismatch)
"""


def write_simulator_rules(home: Path) -> None:
    """Give the demo a network that refuses one port-in, unless rules exist."""
    path = home / "network-simulator.yaml"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(SIMULATOR_RULES, encoding="utf-8")


def seed(platform: Platform) -> bool:
    """Create the demo data once; returns False when it was there already."""
    views = platform.views
    views.catch_up()
    if views.subscriptions.by_msisdn("447700900001") is not None:
        return False
    care = platform.care
    lines = []
    for name, email, msisdn, payment_type in (
        ("Ada Lovelace", "ada@example.com", "447700900001", "postpaid"),
        ("Grace Hopper", "grace@example.com", "447700900002", "prepaid"),
        ("Alan Turing", "alan@example.com", FAILING_PORT_IN, "postpaid"),
    ):
        customer = care.register_customer(
            name=name, email=email, address="1 Demo Street, London", actor="demo"
        )
        account = care.open_account(customer_id=customer, actor="demo")
        subscription = care.create_subscription(
            account_id=account,
            msisdn=msisdn,
            payment_type=payment_type,
            status="active",
            actor="demo",
        )
        lines.append((account, subscription))

    def raise_on(index: int, event: str, note: str) -> None:
        event_type, event_code = event.split()
        care.raise_workflow_event(
            owner_id=lines[index][1],
            level="subscription",
            event_type=event_type,
            event_code=event_code,
            note=note,
            actor="demo",
        )

    raise_on(0, "BFEA DBAR", "customer asked for a data bar")  # completes
    raise_on(1, "TOPU AIRT", "top-up paid by card")  # completes
    raise_on(1, "TOPU SCHD", "promised top-up")  # scheduled in three days
    raise_on(2, "CONN PORT", "port-in from another operator")  # fails
    raise_on(0, "CRED WARN", "invoice overdue")  # bar scheduled in a week
    care.raise_workflow_event(
        owner_id=lines[0][0],
        level="account",
        event_type="ACCT",
        event_code="BUSN",
        note="became a sole trader",
        actor="demo",
    )
    platform.work_until_idle()
    return True
