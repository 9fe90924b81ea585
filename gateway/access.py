"""API tokens: made once, shown once, stored only as a hash."""

from __future__ import annotations

import hashlib
import secrets

TOKEN_PREFIX = "gpt_"  # noqa: S105 (a prefix, not a secret)


def new_token() -> str:
    """A fresh bearer token: 256 random bits, with a prefix that secret scanners can spot."""
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    """What the store keeps. A plain SHA-256 suffices: the token is random, not a password."""
    return hashlib.sha256(token.encode()).hexdigest()
