"""Per-region signing keys and the three signed forms of the instance identity document.

Like AWS, each region has its own self-signed certificates: ``rsa2048`` (RSA-2048, signs the
``/rsa2048`` PKCS#7 with SHA-256), ``rsa`` (RSA-1024, signs the detached ``/signature`` with
SHA-256) and ``dsa`` (DSA-1024, signs the legacy ``/pkcs7`` with SHA-1). The PKCS#7 forms are
encoded as AWS encodes them: indefinite-length BER, content embedded, no certificates, signed
attributes contentType, signingTime, (cmsAlgorithmProtection for rsa2048,) messageDigest.
Bodies are base64 in 76-column lines without PEM armour and without a final newline.
"""

from __future__ import annotations

import base64
import re
import threading
from datetime import datetime, timedelta

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from localclouds import tls
from localclouds.ec2.layout import FORMS, Ec2Paths, Form

REGION = re.compile(r"^[a-z]{2}(?:-[a-z]+)+-\d{1,2}$")
DEFAULT_REGIONS = ("us-east-1", "us-west-2", "eu-west-1")
_KEYS = {"rsa2048": tls.rsa_key(2048), "rsa": tls.rsa_key(1024), "dsa": tls.dsa_key(1024)}
VALIDITY = timedelta(days=3650)


def wrap76(data: bytes) -> str:
    text = base64.b64encode(data).decode()
    return "\n".join(text[i : i + 76] for i in range(0, len(text), 76))


class RegionSigners:
    """Loads or creates each region's certificates on first use (thread-safe), then caches them."""

    def __init__(self, paths: Ec2Paths) -> None:
        self._paths = paths
        self._lock = threading.Lock()
        self._cache: dict[tuple[Form, str], tls.CertifiedKey] = {}

    def get(self, form: Form, region: str) -> tls.CertifiedKey:
        """The signer of ``form`` in ``region``; a region's first use creates all three forms,
        so its trust directory entries appear together."""
        if not REGION.fullmatch(region):
            raise ValueError(f"not an AWS region: {region!r}")
        with self._lock:
            if (form, region) not in self._cache:
                for each in FORMS:
                    self._cache[(each, region)] = tls.ensure_certificate(
                        self._paths.cert(each, region),
                        self._paths.key(each, region),
                        subject=tls.name(
                            f"ec2.{region}.local",
                            state="Washington State",
                            locality="Seattle",
                            unit=f"EC2 instance identity ({each})",
                        ),
                        issuer=None,
                        new_key=_KEYS[each],
                        is_ca=False,
                        validity=VALIDITY,
                    )
            return self._cache[(form, region)]

    def prepare(self, regions: tuple[str, ...]) -> None:
        """Create every form's certificate for ``regions`` (before the server reports healthy)."""
        for region in regions:
            for form in FORMS:
                self.get(form, region)

    def rsa2048(self, document: bytes, region: str, now: datetime) -> str:
        signer = self.get("rsa2048", region)
        der = tls.sign_pkcs7(
            document,
            signer,
            digest="sha256",
            signing_time=now,
            algorithm_protection=True,
            ber_indefinite=True,
        )
        return wrap76(der)

    def pkcs7(self, document: bytes, region: str, now: datetime) -> str:
        signer = self.get("dsa", region)
        der = tls.sign_pkcs7(document, signer, digest="sha1", signing_time=now, ber_indefinite=True)
        return wrap76(der)

    def signature(self, document: bytes, region: str) -> str:
        key = self.get("rsa", region).private_key
        assert isinstance(key, rsa.RSAPrivateKey)
        return wrap76(key.sign(document, padding.PKCS1v15(), hashes.SHA256()))
