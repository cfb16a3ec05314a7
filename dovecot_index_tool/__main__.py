"""Allows ``python -m dovecot_index_tool``."""

from dovecot_index_tool.cli import run

if __name__ == "__main__":
    run()
