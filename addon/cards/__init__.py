"""Pure functions from domain objects to google.apps.card.v1 JSON, and response wrappers."""
