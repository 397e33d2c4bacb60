"""Writes the key and trust stores of a TLS test the way Java deployments and kazoo's
test harness (kazoo/testing/common.py) have them: a CA, a server and a client
certificate (RSA 2048), the server's keystore.jks and the truststore.jks written by
pyjks as the harness writes them (the key as pyjks's "rsa_raw", the CA as a trusted
certificate entry, password "apassword"), a client.jks likewise, and PKCS#12 copies
of all three written by the JDK's keytool (keystore.p12, truststore.p12, client.p12).
PEM files for kazoo: ca.pem, client-cert.pem, client-key.pem.

Unlike the harness's, the certificates are X.509 v3 and the server's names
localhost and 127.0.0.1 (the harness's are v1, CN only).

Usage: python3 make_java_stores.py DIR
"""
import datetime
import os
import subprocess
import sys

import jks
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
import ipaddress

out = sys.argv[1]
PW = "apassword"
now = datetime.datetime.now(datetime.timezone.utc)


def path(name):
    return os.path.join(out, name)


def new_key():
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def name(cn):
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def issue(cn, key, issuer, issuer_key, serial, ca=False, sans=None):
    b = (
        x509.CertificateBuilder()
        .subject_name(name(cn))
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(serial)
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=0 if ca else None), critical=True)
    )
    if sans:
        b = b.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    if not ca:
        b = b.add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]),
            critical=False,
        )
    return b.sign(issuer_key, hashes.SHA256())


ca_key = new_key()
ca = issue("ca.kazoo.org", ca_key, name("ca.kazoo.org"), ca_key, 1, ca=True)
server_key = new_key()
server = issue(
    "localhost", server_key, ca.subject, ca_key, 2,
    sans=[x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))],
)
client_key = new_key()
client = issue("client", client_key, ca.subject, ca_key, 3)

der = lambda c: c.public_bytes(serialization.Encoding.DER)
pem = lambda c: c.public_bytes(serialization.Encoding.PEM)
rsa_raw = lambda k: k.private_bytes(
    serialization.Encoding.DER, serialization.PrivateFormat.TraditionalOpenSSL,
    serialization.NoEncryption())

with open(path("ca.pem"), "wb") as f:
    f.write(pem(ca))
with open(path("client-cert.pem"), "wb") as f:
    f.write(pem(client))
with open(path("client-key.pem"), "wb") as f:
    f.write(client_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))

# As kazoo's harness: jks.KeyStore.new("jks", [...]).save(path, "apassword").
jks.KeyStore.new("jks", [jks.TrustedCertEntry.new("kazoo ca", der(ca))]).save(
    path("truststore.jks"), PW)
jks.KeyStore.new("jks", [jks.PrivateKeyEntry.new(
    "server cert", [der(server)], rsa_raw(server_key), "rsa_raw")]).save(
    path("keystore.jks"), PW)
jks.KeyStore.new("jks", [jks.PrivateKeyEntry.new(
    "client cert", [der(client)], rsa_raw(client_key), "rsa_raw")]).save(
    path("client.jks"), PW)

for store in ("truststore", "keystore", "client"):
    subprocess.run(
        ["keytool", "-importkeystore", "-noprompt",
         "-srckeystore", path(store + ".jks"), "-srcstoretype", "JKS", "-srcstorepass", PW,
         "-destkeystore", path(store + ".p12"), "-deststoretype", "PKCS12",
         "-deststorepass", PW],
        check=True, capture_output=True)
print("stores written")
