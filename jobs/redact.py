"""Text from a corpus made safe to log and to store: no credentials from URIs, no control characters in logs.

A manifest is written by people and tools: a URI may carry ``user:password@``, and an id may hold a newline or a
terminal escape that would forge a log line or repaint a terminal.
"""

from __future__ import annotations

import re

_USERINFO = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)[^/@\s]*@")


def redact(text: str) -> str:
    """``text`` with the ``user:password@`` part of every URI in it replaced by ``***@``."""
    return _USERINFO.sub(r"\g<scheme>***@", text)


def log_text(text: str) -> str:
    """:func:`redact`, then every character that is not printable (newlines, escapes) as its Python escape."""
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in redact(text))
