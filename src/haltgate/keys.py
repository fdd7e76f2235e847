"""Hashing of operator secrets: kill-switch keys and API bearer tokens.

Only hashes are ever stored. :func:`hash_key` makes a salted scrypt hash in the form
``scrypt$n$r$p$salt$hash`` (salt and hash in url-safe base64); :func:`verify_key` checks a
secret against it in constant time. ``pbkdf2_sha256$iterations$salt$hash`` hashes are
accepted too, for platforms whose OpenSSL lacks scrypt.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

from .errors import InvalidInputError, InvalidTypeError

__all__ = ["check_key_hash", "hash_key", "new_token", "verify_key"]

_N, _R, _P = 2**14, 8, 1
# The weakest hash accepted when one is loaded (SPEC §6): what hash_key makes, and PBKDF2
# at the iterations current guidance asks for. A weaker one is refused, not "upgraded".
_MIN_SCRYPT_N, _MIN_SCRYPT_R, _MIN_DIGEST = 2**14, 8, 32
_MIN_PBKDF2_ITERATIONS = 600_000
_MIN_SALT = 16


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _secret_bytes(secret: object, name: str) -> bytes:
    if not isinstance(secret, str | bytes):
        raise InvalidTypeError(name, "<hidden>", "must be a string")
    data = secret.encode() if isinstance(secret, str) else secret
    if not data:
        raise InvalidInputError(name, "<hidden>", "must not be empty")
    return data


def hash_key(secret: str | bytes) -> str:
    """A salted scrypt hash of ``secret`` for the config (never store the secret)."""
    data = _secret_bytes(secret, "secret")
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(data, salt=salt, n=_N, r=_R, p=_P, dklen=32)
    return f"scrypt${_N}${_R}${_P}${_b64(salt)}${_b64(digest)}"


def verify_key(secret: str | bytes, hashed: str) -> bool:
    """True if ``secret`` matches ``hashed`` (constant-time comparison)."""
    try:
        data = _secret_bytes(secret, "secret")
    except InvalidInputError:
        return False
    if not isinstance(hashed, str):
        raise InvalidTypeError("hashed", hashed, "must be a hash made by haltgate.hash_key")
    parts = hashed.split("$")
    try:
        if parts[0] == "scrypt" and len(parts) == 6:
            n, r, p = int(parts[1]), int(parts[2]), int(parts[3])
            salt, expected = _unb64(parts[4]), _unb64(parts[5])
            digest = hashlib.scrypt(data, salt=salt, n=n, r=r, p=p, dklen=len(expected))
        elif parts[0] == "pbkdf2_sha256" and len(parts) == 4:
            iterations = int(parts[1])
            salt, expected = _unb64(parts[2]), _unb64(parts[3])
            digest = hashlib.pbkdf2_hmac("sha256", data, salt, iterations, len(expected))
        else:
            raise ValueError
    except (ValueError, IndexError):
        raise InvalidInputError(
            "hashed", hashed[:16] + "...", "not a hash made by haltgate.hash_key"
        ) from None
    return hmac.compare_digest(digest, expected)


def check_key_hash(value: object, name: str) -> str:
    """``value`` if it is a hash made by :func:`hash_key` (or PBKDF2-SHA256) at least as
    strong as the defaults; else :class:`~haltgate.InvalidInputError` naming ``name``.

    The error never shows the value: a pasted secret is described by its kind and length
    only."""
    if not isinstance(value, str):
        raise InvalidTypeError(name, "<hidden>", "must be a hash made by haltgate.hash_key")
    parts = value.split("$")
    try:
        if parts[0] == "scrypt" and len(parts) == 6:
            n, r, p = int(parts[1]), int(parts[2]), int(parts[3])
            salt, digest = _unb64(parts[4]), _unb64(parts[5])
            weak = []
            if n < _MIN_SCRYPT_N or n & (n - 1):
                weak.append(f"N={n} (at least {_MIN_SCRYPT_N}, a power of 2)")
            if r < _MIN_SCRYPT_R:
                weak.append(f"r={r} (at least {_MIN_SCRYPT_R})")
            if p < 1:
                weak.append(f"p={p} (at least 1)")
        elif parts[0] == "pbkdf2_sha256" and len(parts) == 4:
            iterations = int(parts[1])
            salt, digest = _unb64(parts[2]), _unb64(parts[3])
            weak = []
            if iterations < _MIN_PBKDF2_ITERATIONS:
                weak.append(f"{iterations} iterations (at least {_MIN_PBKDF2_ITERATIONS:,})")
        else:
            raise ValueError
    except (ValueError, IndexError):
        raise InvalidInputError(
            name,
            f"<{_kind_of(value)}, {len(value)} characters>",
            "not a hash made by haltgate.hash_key (never put a secret itself in the config)",
        ) from None
    if len(digest) < _MIN_DIGEST:
        weak.append(f"a {len(digest)}-byte digest (at least {_MIN_DIGEST})")
    if len(salt) < _MIN_SALT:
        weak.append(f"a {len(salt)}-byte salt (at least {_MIN_SALT})")
    if weak:
        raise InvalidInputError(
            name,
            f"<{parts[0]} hash>",
            "weaker than haltgate accepts: " + ", ".join(weak) + "; make one with "
            "haltgate.hash_key(secret)",
        )
    return value


def _kind_of(text: str) -> str:
    if text.startswith(("scrypt$", "pbkdf2_sha256$")):
        return "a damaged hash"
    return "plain text"


def new_token() -> str:
    """A new random secret suitable as an API token or kill-switch key."""
    return secrets.token_urlsafe(32)
