"""Customer-wide rings, pure: the gate over every account, the order, the customer train, and
what a later ring does with an OS no early instance had."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from clouds.aws.patch_train import merge_trains, parse_override_list, render_override_list
from contracts.enrollment import AccountRef
from contracts.patch_config import WindowConfigError, window_config
from contracts.patching import (
    HELD_NO_EARLY,
    Operation,
    PatchRef,
    PatchTrain,
    RingAccount,
    RingRunRecord,
    TrainOs,
    WindowOutcome,
)
from contracts.providers import PatchGroup
from workflows.patch_plan import os_plan
from workflows.ring_gate import customer_train_id, judge_ring_gate, reusable_train, still_running, train_sources

T0 = datetime(2026, 11, 10, 2, tzinfo=UTC)
GCP = AccountRef("111111111111", "arn:aws:iam::111111111111:role/R")
AZURE = AccountRef("222222222222", "arn:aws:iam::222222222222:role/R")


def _train(train_id: str, **per_os: int) -> PatchTrain:
    return PatchTrain(train_id, f"patch-window/x/early-{train_id}", T0,
                      {os: TrainOs(os, n, f"s3://b/patch-train/{train_id}/{os}.yaml" if n else None) for os, n in per_os.items()})


def _ring(account: AccountRef, label: str, outcome: WindowOutcome | None, targets: int = 0, succeeded: int = 0,
          train: PatchTrain | None = None, run: str = "") -> RingAccount:
    if outcome is None:
        return RingAccount(account, label, None)
    rate = None if not targets else succeeded / targets
    record = RingRunRecord(PatchGroup.EARLY, run or f"early-{label}", "r", T0, T0, outcome, targets, succeeded, rate,
                           train, "its own gate" if outcome is WindowOutcome.HELD else None)
    return RingAccount(account, label, record)


def test_the_gate_judges_the_customer_early_ring_as_a_whole() -> None:
    rings = [_ring(GCP, "gcp/acme-prod", WindowOutcome.SUCCEEDED, 19, 19),
             _ring(AZURE, "azure/sub-1", WindowOutcome.COMPLETED_WITH_FAILURES, 1, 0)]
    passed = judge_ring_gate(PatchGroup.ON_TIME, rings, 0.95, [], customer="acme")
    assert not passed.holds and "95.0% of 20" in passed.reason
    assert "gcp/acme-prod: 19/19" in passed.reason and "azure/sub-1: 0/1" in passed.reason

    rings[1] = _ring(AZURE, "azure/sub-1", WindowOutcome.COMPLETED_WITH_FAILURES, 5, 2)
    held = judge_ring_gate(PatchGroup.ON_TIME, rings, 0.95, [], customer="acme")
    assert held.holds and "below the 95% threshold" in held.reason and "of acme" in held.reason
    assert "azure/sub-1: 2/5 succeeded (early-azure/sub-1)" in held.reason
    assert held.blamed == ["early-azure/sub-1"]  # only the run below the threshold is blamed
    released = judge_ring_gate(PatchGroup.ON_TIME, rings, 0.95, ["early-azure/sub-1"], customer="acme")
    assert not released.holds and released.reason.startswith("released by an operator")


def test_a_held_or_refused_run_anywhere_holds_and_no_run_anywhere_holds() -> None:
    ok = _ring(GCP, "gcp/p", WindowOutcome.SUCCEEDED, 4, 4)
    held = judge_ring_gate(PatchGroup.LATE, [ok, _ring(AZURE, "azure/s", WindowOutcome.HELD, run="ot-1")], 0.95, [])
    assert held.holds and "azure/s (ot-1) was held itself: its own gate" in held.reason and held.blamed == ["ot-1"]
    nothing = judge_ring_gate(PatchGroup.ON_TIME, [_ring(GCP, "gcp/p", None), _ring(AZURE, "azure/s", None)], 0.95, [],
                              customer="acme")
    assert nothing.holds and "no early run is recorded for any account of acme" in nothing.reason
    assert nothing.blamed == ["none"]
    # An account whose early ring never ran does not hold the others back.
    quiet = judge_ring_gate(PatchGroup.ON_TIME, [ok, _ring(AZURE, "azure/s", None)], 0.95, [])
    assert not quiet.holds and "azure/s: no early run" in quiet.reason


def test_a_later_ring_holds_while_the_earlier_ring_still_runs_somewhere() -> None:
    rings = [_ring(GCP, "gcp/p", WindowOutcome.SUCCEEDED, 4, 4), _ring(AZURE, "azure/s", WindowOutcome.RUNNING, run="e-az")]
    assert [r.label for r in still_running(rings)] == ["azure/s"]
    gate = judge_ring_gate(PatchGroup.ON_TIME, rings, 0.95, [], customer="acme", waited_minutes=360)
    assert gate.holds and "still running after 360 minutes" in gate.reason and gate.blamed == ["e-az"]


def test_the_customer_train_has_one_id_everywhere() -> None:
    gcp_train = _train("t-gcp", rhel=3, ubuntu=2)
    only_gcp = train_sources([_ring(GCP, "g", WindowOutcome.SUCCEEDED, 2, 2, gcp_train), _ring(AZURE, "a", WindowOutcome.NO_TARGETS)])
    assert reusable_train(only_gcp, GCP.account_id) is gcp_train  # its own account holds it
    assert reusable_train(only_gcp, AZURE.account_id) is None  # Azure gets a copy...
    assert customer_train_id(only_gcp) == "t-gcp"  # ...under the same id
    both = train_sources([_ring(GCP, "g", WindowOutcome.SUCCEEDED, 2, 2, gcp_train),
                          _ring(AZURE, "a", WindowOutcome.SUCCEEDED, 1, 1, _train("t-az", windows=1))])
    assert reusable_train(both, GCP.account_id) is None
    assert customer_train_id(both).startswith("customer-") and customer_train_id(both) == customer_train_id(both[::-1])


def test_merged_train_is_every_install_minus_what_failed_anywhere() -> None:
    a = {"rhel": [PatchRef("kernel.x86_64", "kernel.x86_64:0:4.18.0-513.9.1.el8_9"), PatchRef("sudo.x86_64", "sudo.x86_64:1.9")]}
    b = {"rhel": [PatchRef("bash.x86_64", "bash.x86_64:5.1")], "windows": [PatchRef("KB1", "Update (KB1)")]}
    merged = merge_trains([a, b], [{}, {"rhel": [PatchRef("sudo.x86_64", "sudo.x86_64:1.9")]}])
    assert [p.id for p in merged["rhel"]] == ["bash.x86_64", "kernel.x86_64"]
    assert merged["windows"] == [PatchRef("KB1", "Update (KB1)")]
    assert parse_override_list(render_override_list(merged["rhel"])) == merged["rhel"]


def test_an_os_no_early_instance_had_follows_its_baseline_except_ubuntu_and_debian() -> None:
    train = _train("t", windows=2, centos=0)
    config = window_config(PatchGroup.ON_TIME)
    rhel = os_plan("rhel", PatchGroup.ON_TIME, config, train)
    assert rhel.operation is Operation.INSTALL and rhel.override_url is None and "baseline approves" in (rhel.note or "")
    for os in ("ubuntu", "debian"):
        plan = os_plan(os, PatchGroup.ON_TIME, config, train)
        assert plan.operation is Operation.SCAN and plan.held and HELD_NO_EARLY in (plan.note or "")
    trained = os_plan("windows", PatchGroup.ON_TIME, config, train)
    assert trained.override_url == train.per_os["windows"].url
    nothing = os_plan("centos", PatchGroup.ON_TIME, config, train)  # early had centos, installed nothing
    assert nothing.operation is Operation.SCAN and not nothing.held
    scan = os_plan("rhel", PatchGroup.ON_TIME, window_config(PatchGroup.ON_TIME, overrides={"untrained_os": "scan"}), train)
    assert scan.operation is Operation.SCAN


def test_ring_scope_and_wait_are_link_options() -> None:
    assert window_config(PatchGroup.ON_TIME).ring_scope == "customer"
    assert window_config(PatchGroup.ON_TIME, overrides={"ring_scope": "account", "ring_wait_minutes": 30}).ring_wait_minutes == 30
    with pytest.raises(WindowConfigError, match="ring_scope"):
        window_config(PatchGroup.ON_TIME, overrides={"ring_scope": "world"})
    with pytest.raises(WindowConfigError, match="ring_wait_minutes"):
        window_config(PatchGroup.ON_TIME, overrides={"ring_wait_minutes": -1})


def test_the_link_api_takes_the_ring_options() -> None:
    from pydantic import ValidationError

    from clients.api.link_input import GcpLink

    body = {"provider": "gcp", "cloud_account": "acme-prod", "customer": "ACME",
            "windows": {"on-time": {"ring_scope": "account", "ring_wait_minutes": 120}}}
    link = GcpLink.model_validate(body).to_link()
    assert link.windows == {"on-time": {"ring_scope": "account", "ring_wait_minutes": 120}}
    body["windows"]["on-time"]["ring_scope"] = "world"
    with pytest.raises(ValidationError, match="ring_scope"):
        GcpLink.model_validate(body)
