"""The business-configuration catalogue: event and action configuration, templates."""
