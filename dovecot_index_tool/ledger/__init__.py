"""The findings ledger: runs, mailboxes and findings in a database (SQLite by default).

``schema`` holds the one versioned schema with its migrations; ``store`` records a
scan and answers questions about it; ``lock`` keeps two scans from writing the same
ledger at once.
"""
