"""Repairing mailboxes: the backup taken before any change and the way back to it."""
