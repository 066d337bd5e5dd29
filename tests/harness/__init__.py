"""Real servers (Kafka-protocol broker, SMTP) that the test session starts."""
