"""Local EC2 instance metadata service (IMDSv2) for instances the local AWS (moto) runs.

Run ``python -m localclouds.ec2 --host 127.0.0.1 --port P --state-dir DIR --aws-endpoint URL``.
An instance launched in moto (``RunInstances`` in any account) has its IMDS at
``http://HOST:P/vm/{account}/{region}/{instance-id}``; below it the paths are the real ones
(``PUT /latest/api/token``, ``/latest/dynamic/instance-identity/rsa2048`` ...). Documents are
signed with per-region certificates written to ``DIR/ec2/certs/{rsa2048,rsa,dsa}/<region>.pem``.

:func:`describe` and :func:`worker_env` are pure: they compute addresses and paths only.
"""

from __future__ import annotations

from localclouds.ec2.layout import describe, worker_env

__all__ = ["describe", "worker_env"]
