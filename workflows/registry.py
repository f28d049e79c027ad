"""Every workflow the orchestrator worker runs."""

from __future__ import annotations

from workflows.doctor import DoctorWorkflow

ALL_WORKFLOWS: tuple[type, ...] = (DoctorWorkflow,)
