"""Turning parsed files into findings with stable IDs.

``catalogue`` lists every check (ID, severity, what Dovecot does, the repair we
recommend); the check modules read the parsed files of one mailbox or one user and
return :class:`~dovecot_index_tool.check.findings.Finding` objects.
"""
