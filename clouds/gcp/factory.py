"""Build the gcp worker's dependencies from its settings (passed in, never read here).

Production and the local GCP cloud differ only in these values: a JWKS URL or file, a Compute
endpoint, and whether credentials are sent.
"""

from __future__ import annotations

from clouds.gcp.compute import GceInstances, instances_client
from clouds.gcp.jwks import KeySource, key_source
from config.settings import GcpSettings


def key_source_from_settings(settings: GcpSettings) -> KeySource:
    return key_source(
        jwks_file=settings.jwks_file,
        jwks_url=settings.jwks_url,
        min_refresh_interval=settings.jwks_min_refresh_interval.total_seconds(),
    )


def gce_instances_from_settings(settings: GcpSettings) -> GceInstances:
    return GceInstances(
        instances_client(
            api_endpoint=settings.compute_endpoint,
            credentials_mode=settings.compute_credentials,
        )
    )
