"""Writes the TLS files of kazoo's own test harness, made by the harness's own code
(kazoo.testing.common.ZookeeperCluster.perform_ssl_certs_generation, pyOpenSSL and
pyjks): keystore.jks and truststore.jks saved with "apassword" as ManagedZooKeeper
saves them, and the client's key.pem, cert.pem and cacert.pem as kazoo's
TestSSLClient writes them. The certificates are the harness's: X.509 v1 leaves
(CN=localhost, CN=client) under a v3 CA.

Usage: python3 kazoo_harness_stores.py DIR
"""
import os
import sys
import warnings

warnings.simplefilter("ignore")  # pyOpenSSL's X509Extension deprecation

from kazoo.testing.common import ZookeeperCluster  # noqa: E402

out = sys.argv[1]


class Cluster:
    _ssl_configuration = {}


cluster = Cluster()
ZookeeperCluster.perform_ssl_certs_generation(cluster)
conf = cluster._ssl_configuration
conf["truststore"].save(os.path.join(out, "truststore.jks"), "apassword")
conf["keystore"].save(os.path.join(out, "keystore.jks"), "apassword")
client = ZookeeperCluster.get_ssl_client_configuration(cluster)
for name, key in (("key.pem", "client_key"), ("cert.pem", "client_cert"),
                  ("cacert.pem", "ca_cert")):
    with open(os.path.join(out, name), "wb") as f:
        f.write(client[key])
print("harness stores written")
