"""Tokens: shown once, stored as digests, resolved to a scope, refused when revoked or tampered."""

from __future__ import annotations

import hashlib

import pytest
from sqlalchemy import select

from estate import db, tokens
from estate.results import Scope
from estate.schema import ApiToken


def test_issue_resolve_list_revoke(sessions) -> None:
    with db.transaction(sessions) as session:
        acme_id, acme = tokens.issue(session, "acme", "acme portal")
        admin_id, admin = tokens.issue(session, None, "ops", admin=True)
    with sessions() as session:
        assert tokens.resolve(session, acme) == Scope.of_customer("acme", token_id=acme_id)
        assert tokens.resolve(session, admin) == Scope.everything(token_id=admin_id)
        stored = {row.id: row.digest for row in session.scalars(select(ApiToken))}
        assert stored[acme_id] == hashlib.sha256(acme.encode()).hexdigest()
        assert acme not in stored.values() and admin not in stored.values()
        listed = {t.id: (t.customer, t.label, t.revoked_at) for t in tokens.list_tokens(session)}
        assert listed == {acme_id: ("acme", "acme portal", None), admin_id: (None, "ops", None)}
    with db.transaction(sessions) as session:
        assert tokens.revoke(session, acme_id) is True
        assert tokens.revoke(session, "0" * 16) is False
    with sessions() as session:
        assert tokens.resolve(session, acme) is None
        assert tokens.resolve(session, admin) is not None
        assert [t.id for t in tokens.list_tokens(session, include_revoked=False)] == [admin_id]


def test_malformed_and_tampered_tokens_resolve_to_nothing(sessions) -> None:
    with db.transaction(sessions) as session:
        token_id, token = tokens.issue(session, "acme")
    tampered = token[:-1] + ("A" if token[-1] != "A" else "B")
    with sessions() as session:
        for presented in ["", "Bearer " + token, token + "x", tampered, f"fpt_{token_id}_", "fpt_zz_zz",
                          token.upper(), "x" * 10_000]:
            assert tokens.resolve(session, presented) is None, presented


def test_issue_needs_exactly_one_of_customer_and_admin(sessions) -> None:
    with db.transaction(sessions) as session:
        with pytest.raises(ValueError):
            tokens.issue(session, None)
        with pytest.raises(ValueError):
            tokens.issue(session, "acme", admin=True)
        with pytest.raises(ValueError):
            tokens.issue(session, "  ")
