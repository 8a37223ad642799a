"""Per-rig TLS for the dask scheduler, the board workers and the host's client.

A dask worker unpickles and runs whatever task reaches it, so anyone who can connect to
the scheduler can run code on every board. A rig therefore gets its own certificate
authority, made on the bench host the first time it is needed (``rig deploy`` of a board
with a ``tls://`` scheduler, ``rig scheduler``, or a client connecting to one):

    <rig>.tls/                      beside rig.toml (``rig.toml`` -> ``rig.tls/``), mode 0700
        ca.pem  ca.key              the rig CA (the key never leaves the host)
        scheduler.pem  .key         the scheduler's identity (SAN: its host, localhost)
        client.pem  client.key      the host's client (profile, campaign, rig check)
        workers/<board>.pem  .key   each board's worker identity (uploaded by deploy)

Every private key is written 0600 (created with that mode, never widened). dask's TLS
checks the peer's certificate against the rig CA in both directions (``CERT_REQUIRED``;
host names are not checked, so a rig moved to a new address keeps working), with
``require_encryption``: a peer without a certificate signed by this CA is refused.

Keys are ECDSA P-256, certificates valid for ``VALIDITY_DAYS`` (a bench rig is not
re-keyed on a schedule; delete the folder and redeploy to rotate). Existing files are
reused, so a second deploy uploads the same bytes and changes nothing.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from firmware_host.deploy.settings import DeployError, SAFE_NAME

VALIDITY_DAYS = 3650  # ten years
KEY_MODE = 0o600
DIR_MODE = 0o700
CA_NAME = "ca"
SCHEDULER_NAME = "scheduler"
CLIENT_NAME = "client"
TLS_DIR_SUFFIX = ".tls"


@dataclass(frozen=True)
class TLSIdentity:
    """One party's PEM files: the rig CA, its certificate and its private key."""

    ca: Path
    cert: Path
    key: Path

    def security(self, role: str) -> Any:
        """A ``distributed.security.Security`` for ``role`` (client, scheduler or worker), encryption required."""
        from distributed.security import Security

        if role not in ("client", "scheduler", "worker"):
            raise ValueError(f"TLS role must be client, scheduler or worker, got {role!r}")
        return Security(require_encryption=True, tls_ca_file=str(self.ca), **{f"tls_{role}_cert": str(self.cert), f"tls_{role}_key": str(self.key)})


def rig_tls_dir(rig_source: str | Path) -> Path:
    """The rig's TLS folder: beside its rig.toml, named after it (``lab/rig.toml`` -> ``lab/rig.tls``)."""
    source = Path(rig_source).expanduser()
    if not source.name.endswith(".toml"):
        raise DeployError(f"TLS needs a rig file (its certificates live beside it), got the rig {str(rig_source)!r}")
    return source.with_name(source.name[: -len(".toml")] + TLS_DIR_SUFFIX)


def _crypto() -> Any:
    try:
        from cryptography import x509  # noqa: F401
    except ImportError:
        raise DeployError("TLS certificates need the cryptography package: pip install 'edgetran[host]'") from None
    import cryptography

    return cryptography


def _write_private(path: Path, data: bytes) -> None:
    """Write a secret atomically, created 0600 (the umask cannot widen it)."""
    descriptor, temporary = tempfile.mkstemp(prefix=f".{path.name}-", dir=path.parent)  # mkstemp creates 0600
    try:
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temporary, KEY_MODE)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def _write_public(path: Path, data: bytes) -> None:
    descriptor, temporary = tempfile.mkstemp(prefix=f".{path.name}-", dir=path.parent)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(data)
    os.chmod(temporary, 0o644)
    os.replace(temporary, path)


def _folder(path: Path) -> Path:
    try:
        path.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
    except OSError as error:
        raise DeployError(f"TLS folder {path}: {error.strerror or error}") from None
    os.chmod(path, DIR_MODE)
    return path


def _new_key() -> Any:
    from cryptography.hazmat.primitives.asymmetric import ec

    return ec.generate_private_key(ec.SECP256R1())


def _pem_key(key: Any) -> bytes:
    from cryptography.hazmat.primitives import serialization

    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())


def _names(hosts: Sequence[str]) -> list[Any]:
    from cryptography import x509

    names: list[Any] = []
    for host in dict.fromkeys(h for h in hosts if h):
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    return names


def _certificate(subject_name: str, key: Any, issuer: Any, issuer_key: Any, ca: bool, hosts: Sequence[str]) -> Any:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(minutes=5)  # a board's clock a little behind
    subject = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "edgetran rig"), x509.NameAttribute(NameOID.COMMON_NAME, subject_name)])
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject if issuer is None else issuer.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=VALIDITY_DAYS))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=0 if ca else None), critical=True)
    )
    if ca:
        builder = builder.add_extension(
            x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True, content_commitment=False, key_encipherment=False,
                          data_encipherment=False, key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
    else:
        builder = builder.add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        names = _names(hosts)
        if names:
            builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    return builder.sign(key if issuer_key is None else issuer_key, hashes.SHA256())


def _load_ca(folder: Path) -> tuple[Any, Any]:
    """The rig CA (certificate, key), made on first use."""
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    cert_path, key_path = folder / f"{CA_NAME}.pem", folder / f"{CA_NAME}.key"
    if cert_path.is_file() and key_path.is_file():
        return x509.load_pem_x509_certificate(cert_path.read_bytes()), serialization.load_pem_private_key(key_path.read_bytes(), None)
    key = _new_key()
    cert = _certificate(f"edgetran rig CA ({folder.name})", key, None, None, True, ())
    _write_private(key_path, _pem_key(key))
    _write_public(cert_path, cert.public_bytes(serialization.Encoding.PEM))
    return cert, key


def ensure_identity(folder: str | Path, name: str, hosts: Sequence[str] = ()) -> TLSIdentity:
    """The PEM files of party ``name`` (scheduler, client or ``workers/<board>``), signed by the rig CA; made once, then reused."""
    from cryptography.hazmat.primitives import serialization

    _crypto()
    root = _folder(Path(folder).expanduser())
    parts = name.split("/")
    if not all(SAFE_NAME.match(p) for p in parts) or len(parts) > 2:
        raise DeployError(f"TLS identity name {name!r}: letters, digits, '.', '_' and '-' only")
    target_dir = _folder(root / parts[0]) if len(parts) == 2 else root
    cert_path, key_path = target_dir / f"{parts[-1]}.pem", target_dir / f"{parts[-1]}.key"
    ca_cert, ca_key = _load_ca(root)
    if not (cert_path.is_file() and key_path.is_file()):
        key = _new_key()
        cert = _certificate(f"edgetran {name}", key, ca_cert, ca_key, False, hosts)
        _write_private(key_path, _pem_key(key))
        _write_public(cert_path, cert.public_bytes(serialization.Encoding.PEM))
    return TLSIdentity(root / f"{CA_NAME}.pem", cert_path, key_path)


def worker_identity(folder: str | Path, board: str, host: str) -> TLSIdentity:
    """A board worker's identity (``workers/<board>``)."""
    return ensure_identity(folder, f"workers/{board}", (host,))


def scheduler_identity(folder: str | Path, host: str) -> TLSIdentity:
    """The scheduler's identity, naming its bench-network host and loopback."""
    return ensure_identity(folder, SCHEDULER_NAME, (host, "localhost", "127.0.0.1"))


def client_identity(folder: str | Path) -> TLSIdentity:
    """The host's client identity (profile, campaign, rig check)."""
    return ensure_identity(folder, CLIENT_NAME)
