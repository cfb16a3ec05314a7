"""Dovecot's own configuration as the source of where every user's mail is.

Read through Dovecot (``doveconf -n``), never by parsing ``dovecot.conf`` ourselves:
includes, defaults and 2.3/2.4 differences are then Dovecot's business. What comes out
is one ``UserMailStore`` per user (``model.py``), mapped onto discovery's ``MailRoot``
so that the checks, the scan and the ledger need not know where the paths came from.
"""

from dovecot_index_tool.dovecot_config.doveconf import Doveconf, read_config
from dovecot_index_tool.dovecot_config.model import UserMailStore, mail_root_of, user_stores

__all__ = ["Doveconf", "UserMailStore", "mail_root_of", "read_config", "user_stores"]
