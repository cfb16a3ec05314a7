"""dovecot-index-tool: read-only integrity scanning of Dovecot index files."""

__version__ = "0.1.0"
