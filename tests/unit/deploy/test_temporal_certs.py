"""scripts/make-temporal-certs.sh: a CA, the server's certificate for "temporal" and a client
certificate that chain to it, keys private, and a second run keeps what exists."""

from __future__ import annotations

import ssl
import stat
import subprocess
from pathlib import Path

from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID

ROOT = Path(__file__).resolve().parents[3]


def test_certificates_for_temporal_mtls(tmp_path: Path) -> None:
    out = tmp_path / "temporal"
    done = subprocess.run(["bash", str(ROOT / "scripts/make-temporal-certs.sh"), str(out)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    server = x509.load_pem_x509_certificate((out / "server.pem").read_bytes())
    client = x509.load_pem_x509_certificate((out / "client.pem").read_bytes())
    names = server.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "temporal" in names.get_values_for_type(x509.DNSName)
    assert ExtendedKeyUsageOID.SERVER_AUTH in server.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(client.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value) == [ExtendedKeyUsageOID.CLIENT_AUTH]
    assert stat.S_IMODE(out.stat().st_mode) == 0o700  # the host's other users stay out
    assert stat.S_IMODE((out / "ca.key").stat().st_mode) == 0o600  # never mounted

    # Both sides of an mTLS handshake accept them: the server's context requires a client certificate.
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(out / "server.pem", out / "server.key")
    server_ctx.load_verify_locations(out / "ca.pem")
    server_ctx.verify_mode = ssl.CERT_REQUIRED
    client_ctx = ssl.create_default_context(cafile=str(out / "ca.pem"))
    client_ctx.load_cert_chain(out / "client.pem", out / "client.key")
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    s_in, s_out = ssl.MemoryBIO(), ssl.MemoryBIO()
    client_side = client_ctx.wrap_bio(incoming, outgoing, server_hostname="temporal")
    server_side = server_ctx.wrap_bio(s_in, s_out, server_side=True)
    for _ in range(10):
        for side in (client_side, server_side):
            try:
                side.do_handshake()
            except ssl.SSLWantReadError:
                pass
        s_in.write(outgoing.read())
        incoming.write(s_out.read())
    assert server_side.getpeercert()["subject"] == ((("commonName", "fleetpatch"),),)

    before = (out / "server.pem").read_bytes()
    again = subprocess.run(["bash", str(ROOT / "scripts/make-temporal-certs.sh"), str(out)],
                           capture_output=True, text=True, timeout=60)
    assert again.returncode == 0 and (out / "server.pem").read_bytes() == before
