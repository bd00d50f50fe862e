"""Flask blueprints: triggers, actions and health."""
