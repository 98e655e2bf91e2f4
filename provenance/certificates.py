"""X.509 for C2PA signing: the platform's Ed25519 key needs a certificate, because C2PA
validators trust certificate chains, not bare keys. No Django.

Production: the operator brings a chain issued by a CA that C2PA validators trust (leaf first,
then intermediates). The embedded default makes a development CA and a leaf for the platform's
signing key on first use, like the dev signing key; files signed with it validate as "Trusted"
only where that dev CA is configured as a trust anchor (the tests and `make demo` do that).

`check_signing_chain` refuses, with a reason, what c2pa-rs would refuse at signing or what
validators would later reject: a leaf that is a CA, lacks digitalSignature, carries none of the
extended key usages C2PA accepts, is out of its validity window, or is for another key.
"""
from __future__ import annotations

import datetime as dt

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID, ObjectIdentifier

#: Extended key usages C2PA accepts on a claim-signing certificate (C2PA 2.x, §14.5.1).
C2PA_EKUS = {
    ExtendedKeyUsageOID.EMAIL_PROTECTION: "emailProtection",
    ObjectIdentifier("1.3.6.1.5.5.7.3.36"): "documentSigning",
    ObjectIdentifier("1.3.6.1.4.1.62558.2.1"): "c2pa-kp-claimSigning",
    ObjectIdentifier("1.3.6.1.4.1.311.76.59.1.9"): "MS C2PA signing",
}
DEV_ORG = "ClearStem development (not trusted outside this installation)"


class CertificateError(ValueError):
    pass


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, DEV_ORG),
                      x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def make_dev_ca(key: Ed25519PrivateKey, common_name: str = "ClearStem development CA",
                years: int = 10) -> x509.Certificate:
    """A self-signed certificate for `key` as a CA that may only issue end entities."""
    now = _now()
    cert = (x509.CertificateBuilder().subject_name(_name(common_name)).issuer_name(_name(common_name))
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(hours=1)).not_valid_after(now + dt.timedelta(days=365 * years))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=False, content_commitment=False, key_encipherment=False,
                                         data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                         crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(key, None))
    return cert


def issue_signing_certificate(ca_key: Ed25519PrivateKey, ca_cert: x509.Certificate, public_key: Ed25519PublicKey,
                              common_name: str = "ClearStem stem signer", days: int = 825) -> x509.Certificate:
    """An end-entity certificate for `public_key` with what C2PA asks of a claim signer:
    digitalSignature (critical), not a CA, and the C2PA claim-signing and emailProtection EKUs."""
    now = _now()
    not_after = min(now + dt.timedelta(days=days), ca_cert.not_valid_after_utc)
    return (x509.CertificateBuilder().subject_name(_name(common_name)).issuer_name(ca_cert.subject)
            .public_key(public_key).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(hours=1)).not_valid_after(not_after)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                                         data_encipherment=False, key_agreement=False, key_cert_sign=False,
                                         crl_sign=False, encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ObjectIdentifier("1.3.6.1.4.1.62558.2.1"),
                                                  ExtendedKeyUsageOID.EMAIL_PROTECTION]), critical=False)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_cert.public_key()), critical=False)
            .sign(ca_key, None))


def pem(cert: x509.Certificate) -> str:
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def load_chain(chain_pem: str | bytes) -> list[x509.Certificate]:
    try:
        certs = x509.load_pem_x509_certificates(chain_pem.encode() if isinstance(chain_pem, str) else chain_pem)
    except ValueError as exc:
        raise CertificateError(f"not a PEM certificate chain ({exc})") from None
    if not certs:
        raise CertificateError("the certificate chain is empty")
    return certs


def _raw(public_key) -> bytes:
    return public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def check_signing_chain(chain_pem: str | bytes, public_key: Ed25519PublicKey,
                        at: dt.datetime | None = None) -> list[x509.Certificate]:
    """The chain (leaf first) if it can sign C2PA claims with `public_key`; else CertificateError."""
    certs = load_chain(chain_pem)
    leaf = certs[0]
    at = at or _now()
    if not isinstance(leaf.public_key(), Ed25519PublicKey) or _raw(leaf.public_key()) != _raw(public_key):
        raise CertificateError("the certificate is not for the platform's signing key (an Ed25519 key)")
    if not leaf.not_valid_before_utc <= at <= leaf.not_valid_after_utc:
        raise CertificateError(f"the signing certificate is valid only from {leaf.not_valid_before_utc:%Y-%m-%d} "
                               f"to {leaf.not_valid_after_utc:%Y-%m-%d}")
    try:
        if leaf.extensions.get_extension_for_class(x509.BasicConstraints).value.ca:
            raise CertificateError("the signing certificate is a CA certificate; C2PA needs an end-entity one")
    except x509.ExtensionNotFound:
        pass
    try:
        usage = leaf.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        raise CertificateError("the signing certificate has no key usage extension (digitalSignature needed)") from None
    if not usage.digital_signature:
        raise CertificateError("the signing certificate's key usage lacks digitalSignature")
    try:
        ekus = set(leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value)
    except x509.ExtensionNotFound:
        ekus = set()
    if not ekus & set(C2PA_EKUS):
        raise CertificateError("the signing certificate has none of the extended key usages C2PA accepts: "
                               + ", ".join(sorted(C2PA_EKUS.values())))
    for child, parent in zip(certs, certs[1:]):
        if child.issuer != parent.subject:
            raise CertificateError(f"the chain is out of order: {child.subject.rfc4514_string()} was not issued by "
                                   f"{parent.subject.rfc4514_string()}")
    return certs
