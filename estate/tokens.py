"""Read tokens: admin (everything) or one customer's; stored as SHA-256 digests, never in clear."""

from __future__ import annotations

from sqlalchemy.orm import Session

from estate.results import Scope, TokenInfo


def issue(session: Session, customer: str | None, label: str = "", *, admin: bool = False) -> tuple[str, str]:
    """A new token: ``(id, token)``. ``customer=None`` needs ``admin=True``. The token is shown once."""
    raise NotImplementedError


def list_tokens(session: Session, include_revoked: bool = True) -> list[TokenInfo]:
    raise NotImplementedError


def revoke(session: Session, token_id: str) -> bool:
    """Revoke a token; False when no such token."""
    raise NotImplementedError


def resolve(session: Session, presented: str) -> Scope | None:
    """The scope of a presented token, or None (unknown, malformed or revoked). Constant-time compare."""
    raise NotImplementedError
