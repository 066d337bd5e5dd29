"""Command side of monetise: eventsourcing Applications and process managers."""
