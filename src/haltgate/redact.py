"""The one redaction rule for store URLs in output, log lines and errors (SPEC §6).

``redact_url`` works on any text, not only on a bare URL: an error message or a repr that
embeds ``redis://:secret@host/0?password=secret`` comes out as
``redis://:***@host/0?password=***``.
"""

from __future__ import annotations

import re

__all__ = ["MASK", "redact_url"]

MASK = "***"
"""What a secret is replaced with."""

# scheme://USERINFO@ where USERINFO runs to the last "@" before the host ends, as
# urllib.parse reads a netloc (so a raw "@" inside a password is still covered).
_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)([^/?#\s]*)@")
_SECRET_PARAM = re.compile(
    r"(?i)\b(password|passwd|pwd|token|secret|api_key|access_key)=([^&#\s'\"]*)"
)


def _mask_userinfo(match: re.Match[str]) -> str:
    scheme, userinfo = match.group(1), match.group(2)
    user, colon, _ = userinfo.partition(":")
    if not colon:
        # A lone userinfo is taken as a password: Redis clients accept redis://secret@host.
        return f"{scheme}{MASK}@"
    return f"{scheme}{user}:{MASK}@"


def redact_url(text: str) -> str:
    """``text`` with every URL password (``user:PASSWORD@``) and every ``password=`` /
    ``token=`` (and similar) value masked; anything else is unchanged."""
    text = _USERINFO.sub(_mask_userinfo, text)
    return _SECRET_PARAM.sub(lambda m: f"{m.group(1)}={MASK}", text)
