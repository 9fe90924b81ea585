"""API tokens: made once, shown once, stored only as a hash; a depot token names its depots."""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Sequence

from edge.contract.base import SLUG_PATTERN
from gateway.store.records import AccessRole

TOKEN_PREFIX = "gpt_"  # noqa: S105 (a prefix, not a secret)


def new_token() -> str:
    """A fresh bearer token: 256 random bits, with a prefix that secret scanners can spot."""
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    """What the store keeps. A plain SHA-256 suffices: the token is random, not a password."""
    return hashlib.sha256(token.encode()).hexdigest()


DEPOTS_MAX = 64  # depots one token may name
_SLUG = re.compile(SLUG_PATTERN)


def token_depots(role: AccessRole, depots: Sequence[str]) -> tuple[str, ...]:
    """The depots a token of `role` is to see, checked: each `site/node` once, in order.

    A depot token names at least one and at most DEPOTS_MAX; the other roles name none
    (command and admin see every depot, registrar none).

    Args:
        role: the token's role.
        depots: as given, e.g. ["north/d01", "north/d02"].

    Returns:
        The depots without repeats.

    Raises:
        ValueError: a depot token naming none or too many, another role naming any, or
            an entry that is not two slugs joined by a slash.
    """
    if role != "depot":
        if depots:
            raise ValueError(f"only a depot token names depots; a {role} token sees "
                             f"{'none' if role == 'registrar' else 'every one'}")  # fmt: skip
        return ()
    for depot in depots:
        site, _, node = depot.partition("/")
        if not (_SLUG.fullmatch(site) and _SLUG.fullmatch(node)):
            shown = depot[:140] + ("…" if len(depot) > 140 else "")
            raise ValueError(f"depot {shown!r}: give it as SITE/NODE, e.g. north/d01 "
                             "(lowercase letters, digits, - and _)")  # fmt: skip
    unique = tuple(dict.fromkeys(depots))
    if not unique:
        raise ValueError("a depot token names its depots: --depot SITE/NODE (at least one)")
    if len(unique) > DEPOTS_MAX:
        raise ValueError(f"a depot token names at most {DEPOTS_MAX} depots, not {len(unique)}")
    return unique
