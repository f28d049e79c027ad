"""Secrets at start-up: empty, short or placeholder values are refused, naming the setting and
never echoing the value; the admin token is compared exactly as presented."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from pydantic import SecretStr, ValidationError
from temporalio.client import Client

from clients.api.app import create_app
from clients.api.gateway import TemporalGateway
from config.secrets import MIN_LENGTH, weakness
from config.settings import ApiSettings, Settings

REPO = Path(__file__).resolve().parents[3]
STRONG = "Zq8v-3kT_pW9xLm2Rb7nYc4Hs6Jd1Fg0Ae5Ui"
#: example values shipped (or once shipped) in deploy/*.env.example, plus any still there
SHIPPED = sorted({"change-me-long-random", "...", *(
    line.split("=", 1)[1].split("#")[0].strip()
    for path in (REPO / "deploy").glob("*.env.example")
    for line in path.read_text().splitlines()
    if line.startswith(("FLEETPATCH_API__ADMIN_TOKEN=", "FLEETPATCH_API__CHALLENGE_KEY=",
                        "FLEETPATCH_SEALING_KEY=", "FLEETPATCH_CODEC__KEYS="))
)})


@pytest.mark.parametrize("value", ["", " ", "short", "changeme", "change-me-long-random-change-me-long",
                                   "x" * 40, "." * 40, f" {STRONG}", f"{STRONG}\n", *SHIPPED])
def test_weak_values_are_refused(value: str) -> None:
    assert weakness(value) is not None


def test_a_random_value_passes() -> None:
    assert len(STRONG) >= MIN_LENGTH and weakness(STRONG) is None


@pytest.mark.parametrize(("variable", "named"), [
    ("FLEETPATCH_API__ADMIN_TOKEN", "FLEETPATCH_API__ADMIN_TOKEN"),
    ("FLEETPATCH_API__CHALLENGE_KEY", "FLEETPATCH_API__CHALLENGE_KEY"),
    ("FLEETPATCH_SEALING_KEY", "FLEETPATCH_SEALING_KEY"),
])
@pytest.mark.parametrize("value", ["", "change-me-long-random", "tooShort-butRandom-7f3a"])
def test_settings_refuse_and_name_the_setting(monkeypatch: pytest.MonkeyPatch, variable: str,
                                              named: str, value: str) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(ValidationError) as refused:
        Settings()
    assert named in str(refused.value)
    if value:
        assert value not in str(refused.value)
    with pytest.raises(SystemExit) as stopped:
        Settings.load()
    assert named in str(stopped.value.code) and (not value or value not in str(stopped.value.code))


def test_unset_secrets_stay_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("FLEETPATCH_API__ADMIN_TOKEN", "FLEETPATCH_API__CHALLENGE_KEY", "FLEETPATCH_SEALING_KEY"):
        monkeypatch.delenv(name, raising=False)
    settings = Settings()
    assert settings.api.admin_token is None and settings.sealing_key is None


@pytest.mark.parametrize("role", [["-m", "clients.api"], ["-m", "workers", "--role", "aws"]])
def test_processes_stop_at_start_with_a_clear_message(role: list[str]) -> None:
    env = {"PATH": "/usr/bin:/bin", "FLEETPATCH_API__ADMIN_TOKEN": "change-me-long-random"}
    done = subprocess.run([sys.executable, *role], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 1
    assert "FLEETPATCH_API__ADMIN_TOKEN is a placeholder" in done.stderr
    assert "change-me-long-random" not in done.stderr and "Traceback" not in done.stderr


async def _unreachable() -> Client:
    raise ConnectionError("no Temporal here")


def _api(token: str) -> httpx.AsyncClient:
    # model_construct: a token that skipped validation, as if configured around the checks.
    api = ApiSettings.model_construct(**{**ApiSettings().model_dump(), "admin_token": SecretStr(token)})
    app = create_app(Settings(api=api), TemporalGateway(_unreachable))
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api")


@pytest.mark.parametrize("presented", ["\xa0", " ", "\t"])
async def test_an_empty_token_never_matches_whitespace(presented: str) -> None:
    async with _api("") as api:
        answer = await api.get("/v1/admin/links", headers={"Authorization": f"Bearer {presented}".encode("latin-1")})
    assert answer.status_code in (401, 403)


@pytest.mark.parametrize("presented", [f" {STRONG}", f"{STRONG} ", f"{STRONG}\xa0", STRONG[:-1]])
async def test_the_token_is_compared_exactly(presented: str) -> None:
    async with _api(STRONG) as api:
        refused = await api.get("/v1/admin/links", headers={"Authorization": f"Bearer {presented}".encode("latin-1")})
        accepted = await api.get("/v1/admin/links", headers={"Authorization": f"Bearer {STRONG}"})
    assert refused.status_code in (401, 403)
    assert accepted.status_code not in (401, 403)
