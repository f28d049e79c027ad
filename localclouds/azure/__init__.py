"""Local Azure cloud: per-VM IMDS, a managed-identity endpoint and ARM over TLS, in one process.

Run ``python -m localclouds.azure --host 127.0.0.1 --port P --arm-port A --state-dir DIR``.
A VM created through ARM (``ComputeManagementClient(...).virtual_machines.begin_create_or_update``)
has its IMDS at ``http://HOST:P/vm/{name}`` (or ``/vm/{vmId}``); below it the paths are the real
ones (``/metadata/attested/document?api-version=2020-09-01&nonce=N``, ``/metadata/instance``).
Attested documents chain to a local root (``roots``) through a local issuing CA
(``intermediates``) that, as in Azure, the document itself does not embed.

:func:`describe` and :func:`worker_env` compute addresses and paths; ``worker_env`` also
creates (once) the managed-identity secret the worker presents, if the cloud has not yet.
"""

from __future__ import annotations

from localclouds.azure.layout import describe, worker_env

__all__ = ["describe", "worker_env"]
