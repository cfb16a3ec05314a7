"""The repair queue: one job per affected mailbox, prioritized, claimed in batches by
workers under per-volume limits, with leases, retries and an event for every change."""
