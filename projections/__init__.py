"""Read models built from the notification logs, tracked in the same transaction."""
