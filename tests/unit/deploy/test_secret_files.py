"""Secrets handed as files: ``FLEETPATCH_X_FILE`` sets ``FLEETPATCH_X`` from the file's content."""

from __future__ import annotations

from pathlib import Path

import pytest

from config.secret_files import SecretFileUnreadable
from config.settings import Settings


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for name in list(os.environ):
        if name.startswith("FLEETPATCH_"):
            monkeypatch.delenv(name)


def _secret(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def test_nested_and_top_level_settings_read_their_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLEETPATCH_API__ADMIN_TOKEN_FILE", _secret(tmp_path, "admin", "admin-tk-7Hq2Lm9Xv4Rt1Wn6Bk3Jc8Pd5Fg0Ae\n"))
    monkeypatch.setenv("FLEETPATCH_SEALING_KEY_FILE", _secret(tmp_path, "sealing", "sealing-k-3Z9p1y6M4c2X8f0R5s7D3a1K9e6H"))
    monkeypatch.setenv("FLEETPATCH_API__PORT", "9999")  # other settings of the same group still apply
    settings = Settings()
    assert settings.api.admin_token is not None
    assert settings.api.admin_token.get_secret_value() == "admin-tk-7Hq2Lm9Xv4Rt1Wn6Bk3Jc8Pd5Fg0Ae"
    assert settings.sealing_key is not None and settings.sealing_key.get_secret_value() == "sealing-k-3Z9p1y6M4c2X8f0R5s7D3a1K9e6H"
    assert settings.api.port == 9999


def test_a_value_set_directly_wins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLEETPATCH_SEALING_KEY_FILE", _secret(tmp_path, "sealing", "from-file-Q4n8Xw2Lq6Rt0Vy3Mb7Kc1Hs9Dj5F"))
    monkeypatch.setenv("FLEETPATCH_SEALING_KEY", "from-env-P2m7Kx9Lq4Rt6Vy1Nb3Jc8Hs5Dg0W")
    assert Settings().sealing_key.get_secret_value() == "from-env-P2m7Kx9Lq4Rt6Vy1Nb3Jc8Hs5Dg0W"  # type: ignore[union-attr]


def test_settings_named_file_keep_their_meaning(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    jwks = _secret(tmp_path, "jwks.json", '{"keys": []}')
    monkeypatch.setenv("FLEETPATCH_GCP__JWKS_FILE", jwks)
    monkeypatch.setenv("FLEETPATCH_NOT_A_SETTING_FILE", "/nonexistent")  # ignored, like any unknown variable
    settings = Settings()
    assert settings.gcp.jwks_file == Path(jwks)


def test_an_unreadable_file_stops_start_up_naming_the_variable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLEETPATCH_API__CHALLENGE_KEY_FILE", str(tmp_path / "missing"))
    with pytest.raises(SecretFileUnreadable, match="FLEETPATCH_API__CHALLENGE_KEY_FILE"):
        Settings()
