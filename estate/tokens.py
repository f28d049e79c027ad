"""Read tokens: admin (everything) or one customer's; stored as SHA-256 digests, never in clear.

A token reads ``fpt_<id>_<secret>``: the id finds its row (ids are listed, never secret), the
digest of the whole token is compared in constant time, and a revoked token resolves to nothing.
Tokens carry 256 bits of randomness, so a plain SHA-256 digest is enough to store them.
"""

from __future__ import annotations

from datetime import UTC, datetime
import hashlib
import hmac
import re
import secrets

from sqlalchemy import select
from sqlalchemy.orm import Session

from estate.results import Scope, TokenInfo
from estate.schema import ApiToken

PREFIX = "fpt"
_SHAPE = re.compile(r"^fpt_([0-9a-f]{16})_[A-Za-z0-9_-]{43}$")
_NOBODY = hashlib.sha256(b"no such token").hexdigest()
MAX_LABEL = 200


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def issue(session: Session, customer: str | None, label: str = "", *, admin: bool = False) -> tuple[str, str]:
    """A new token: ``(id, token)``. ``customer=None`` needs ``admin=True``. The token is shown once."""
    if admin == (customer is not None):
        raise ValueError("a token is either admin or for exactly one customer")
    if customer is not None and not customer.strip():
        raise ValueError("customer must not be empty")
    if len(label) > MAX_LABEL:
        raise ValueError(f"label: at most {MAX_LABEL} characters")
    token_id = secrets.token_hex(8)
    token = f"{PREFIX}_{token_id}_{secrets.token_urlsafe(32)}"
    session.add(ApiToken(id=token_id, digest=_digest(token), label=label, customer=customer,
                         created_at=datetime.now(UTC)))
    session.flush()
    return token_id, token


def list_tokens(session: Session, include_revoked: bool = True) -> list[TokenInfo]:
    query = select(ApiToken).order_by(ApiToken.created_at, ApiToken.id)
    if not include_revoked:
        query = query.where(ApiToken.revoked_at.is_(None))
    return [
        TokenInfo(id=row.id, label=row.label, customer=row.customer, created_at=row.created_at,
                  revoked_at=row.revoked_at)
        for row in session.scalars(query)
    ]


def revoke(session: Session, token_id: str) -> bool:
    """Revoke a token; False when no such token. Revoking twice keeps the first time."""
    row = session.get(ApiToken, token_id)
    if row is None:
        return False
    if row.revoked_at is None:
        row.revoked_at = datetime.now(UTC)
        session.flush()
    return True


def resolve(session: Session, presented: str) -> Scope | None:
    """The scope of a presented token, or None (unknown, malformed or revoked). Constant-time compare."""
    match = _SHAPE.match(presented or "")
    row = session.get(ApiToken, match.group(1)) if match else None
    expected = row.digest if row is not None else _NOBODY
    if not hmac.compare_digest(_digest(presented or ""), expected) or row is None:
        return None
    if row.revoked_at is not None:
        return None
    if row.customer is None:
        return Scope.everything(token_id=row.id)
    return Scope.of_customer(row.customer, token_id=row.id)
