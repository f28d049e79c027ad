"""What an enrollment reads instead of starting its shared children again, and its one-call
activation: the contracts of EnrollVm's short path (the systems account already exists).

No ``from __future__ import annotations`` here: the field types are classes, not strings, so a
workflow sandbox decodes them without looking this module up.
"""

from dataclasses import dataclass

from contracts.enrollment import ActivationRequest, SsmConfigurationResult, SystemsAccount
from contracts.providers import Provider


@dataclass
class KnownSetupInput:
    """A cloud account's SystemsAccount run, and the SsmConfiguration version the enrollment needs."""

    provider: Provider
    cloud_account: str
    configuration_version: int


@dataclass
class KnownSetup:
    """The completed results of the shared children, each ``None`` while it has not completed
    (never started, running, or failed): the enrollment then starts or awaits that child."""

    account: SystemsAccount | None = None
    configuration: SsmConfigurationResult | None = None


@dataclass
class NewInstanceActivation:
    """Trust on first use and the activation in one call: refused (``AlreadyEnrolled``) when
    ``instance_key`` is already a managed instance of the account."""

    instance_key: str
    activation: ActivationRequest
