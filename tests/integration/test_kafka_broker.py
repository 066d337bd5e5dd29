"""The test broker speaks enough Kafka for a producer and a consumer group."""

from __future__ import annotations

import time
import uuid

import pytest
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer
from kafka.admin import NewTopic

from tests.harness.kafka import CONSUMER_SESSION_TIMEOUT_MS, kafka_broker  # noqa: F401

pytestmark = pytest.mark.integration

CONSUME_TIMEOUT_S = 30.0


def test_a_message_produced_to_the_broker_is_consumed_back(kafka_broker: str) -> None:  # noqa: F811
    topic = f"broker-check-{uuid.uuid4().hex}"
    # One partition, so that the order read back is the order sent.
    with KafkaAdminClient(bootstrap_servers=kafka_broker) as admin:
        admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)])
    sent = [(f"account-{n}".encode(), f"payload-{n}".encode()) for n in range(3)]

    producer = KafkaProducer(bootstrap_servers=kafka_broker)
    try:
        deliveries = [producer.send(topic, key=key, value=value) for key, value in sent]
        producer.flush(timeout=10)
        for delivery in deliveries:
            delivery.get(timeout=10)
    finally:
        producer.close()

    consumer = KafkaConsumer(
        topic,
        bootstrap_servers=kafka_broker,
        group_id=f"broker-check-{uuid.uuid4().hex}",
        auto_offset_reset="earliest",
        session_timeout_ms=CONSUMER_SESSION_TIMEOUT_MS,
    )
    received: list[tuple[bytes | None, bytes | None]] = []
    try:
        deadline = time.monotonic() + CONSUME_TIMEOUT_S
        while len(received) < len(sent) and time.monotonic() < deadline:
            for records in consumer.poll(timeout_ms=500).values():
                received.extend((record.key, record.value) for record in records)
    finally:
        consumer.close()

    assert received == sent
