"""The local Azure cloud's two apps, over one context (keys, VMs, clock):

- the plain-HTTP listener: per-VM IMDS (:mod:`~localclouds.azure.imds`) and the App Service
  managed-identity endpoint (:mod:`~localclouds.azure.msi`);
- the TLS listener: Azure Resource Manager (:mod:`~localclouds.azure.arm`).

Both answer the local clouds' health route.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from fastapi import FastAPI

from localclouds.azure import arm, imds, msi
from localclouds.azure.context import AzureContext
from localclouds.azure.material import AzureMaterial
from localclouds.azure.vms import VmStore
from localclouds.serving import emulator_app


def create_imds_app(
    material: AzureMaterial, store: VmStore, clock: Callable[[], datetime]
) -> FastAPI:
    context = AzureContext(material, store, clock)
    return emulator_app("fleetpatch local Azure IMDS", [imds.router, msi.router], azure=context)


def create_arm_app(
    material: AzureMaterial, store: VmStore, clock: Callable[[], datetime]
) -> FastAPI:
    context = AzureContext(material, store, clock)
    return emulator_app("fleetpatch local Azure Resource Manager", [arm.router], azure=context)
