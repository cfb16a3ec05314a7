"""Repairing mailboxes: what a mailbox holds on disk before a repair, the backup taken
before any change, and the way back to it."""
