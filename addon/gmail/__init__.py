"""Gmail message and header helpers."""
