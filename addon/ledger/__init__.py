"""The email ledger: every message recorded once per workspace, thread links and email stats.

models   the tables (conversations, messages, participants, thread maps, suppressions, stats)
policy   who is inside the workspace, what is never linked (free mail, exclusions, automation)
parse    LedgerInput (what the sidebar, mail merge and sync hand over) -> normalised messages
ingest   record_messages: idempotent, batched, concurrency-safe recording
linking  automatic thread links, and the ledger side of manual link/unlink and merges
stats    per-record email stats: incremental deltas, refresh, recompute, stats fields
cli      `flask --app addon crm recompute-stats`
sql      prepared IN lists and bulk inserts that keep per-row Python work small
"""
