"""GCP: instance identity token verification (pure), its key sources, and the Compute API wrapper.

Import the submodules you need (``clouds.gcp.verify``, ``clouds.gcp.jwks``,
``clouds.gcp.compute``); this package imports nothing at load so that a process that only
verifies does not load google-cloud-compute.
"""
