"""Scanning whole volumes: discovery feeds a pool of worker processes, one mailbox per
task; results stream back into the ledger and the output as they finish."""
