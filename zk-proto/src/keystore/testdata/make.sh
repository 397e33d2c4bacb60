#!/bin/sh
# Makes the key and trust stores the keystore unit tests read (run from this
# directory; needs JDK 17's keytool, openssl 3 and pyjks 20.0.0). The stores hold
# throw-away keys made here; every password is "apassword".
set -eu
PW=apassword
rm -f *.jks *.p12 *.pem *.pfx *.der
DN_CA="CN=fixture CA"

# A CA and a server key signed by it (openssl), the source of several stores.
openssl req -x509 -newkey rsa:2048 -nodes -keyout ca-key.pem -out ca.pem -days 36500 \
  -subj "/CN=fixture CA" -addext basicConstraints=critical,CA:TRUE 2>/dev/null
openssl req -newkey rsa:2048 -nodes -keyout server-key.pem -out server.csr \
  -subj "/CN=localhost" 2>/dev/null
printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\n' > san.ext
openssl x509 -req -in server.csr -CA ca.pem -CAkey ca-key.pem -CAcreateserial \
  -days 36500 -extfile san.ext -out server-cert.pem 2>/dev/null
rm -f server.csr san.ext ca.srl

# X.509 v1 client certificates (no extensions), as kazoo's test harness makes them:
# one signed by the CA, one self-signed.
openssl req -newkey rsa:2048 -nodes -keyout client-v1-key.pem -out client.csr \
  -subj "/CN=client" 2>/dev/null
openssl x509 -req -in client.csr -CA ca.pem -CAkey ca-key.pem -set_serial 3 \
  -days 36500 -out client-v1-cert.pem 2>/dev/null
cat client-v1-key.pem client-v1-cert.pem > client-v1.pem
openssl x509 -req -in client.csr -signkey client-v1-key.pem -days 36500 \
  -out rogue-v1-cert.pem 2>/dev/null
cat client-v1-key.pem rogue-v1-cert.pem > rogue-v1.pem
rm -f client.csr client-v1-key.pem client-v1-cert.pem rogue-v1-cert.pem

# PEM: key and chain in one file; the same key encrypted (PBES2, AES-256-CBC).
cat server-key.pem server-cert.pem ca.pem > server.pem
openssl pkcs8 -topk8 -in server-key.pem -v2 aes-256-cbc -passout pass:$PW \
  -out server-key-enc.pem
cat server-key-enc.pem server-cert.pem ca.pem > server-encrypted.pem
rm server-key-enc.pem

# openssl 3's PKCS#12 (PBES2/AES-256, HMAC-SHA256 MAC).
openssl pkcs12 -export -in server-cert.pem -inkey server-key.pem -certfile ca.pem \
  -name server -passout pass:$PW -out openssl.p12

# keytool, JDK 17: JKS and PKCS#12 key stores (a fresh EC key), trust stores holding
# the CA, a PKCS#12 store written to a .jks name (keytool's default type), and a
# legacy PKCS#12 (3DES/RC2, SHA-1 MAC).
keytool -genkeypair -keyalg EC -groupname secp256r1 -alias server -dname CN=localhost \
  -ext san=dns:localhost,ip:127.0.0.1 -validity 36500 -storetype JKS \
  -keystore keytool.jks -storepass $PW -keypass $PW 2>/dev/null
keytool -importkeystore -srckeystore keytool.jks -srcstorepass $PW -srcstoretype JKS \
  -destkeystore keytool.p12 -deststoretype PKCS12 -deststorepass $PW 2>/dev/null
keytool -importkeystore -srckeystore keytool.jks -srcstorepass $PW -srcstoretype JKS \
  -destkeystore keytool-pkcs12-named.jks -deststorepass $PW 2>/dev/null
keytool -J-Dkeystore.pkcs12.legacy -importkeystore -srckeystore keytool.jks \
  -srcstorepass $PW -srcstoretype JKS -destkeystore keytool-legacy.p12 \
  -deststoretype PKCS12 -deststorepass $PW 2>/dev/null
# An RSA key (keytool's EC keys carry no public key in their PKCS#8, which ring needs).
keytool -genkeypair -keyalg RSA -keysize 2048 -alias server -dname CN=localhost \
  -ext san=dns:localhost,ip:127.0.0.1 -validity 36500 -storetype JKS \
  -keystore keytool-rsa.jks -storepass $PW -keypass $PW 2>/dev/null
keytool -importkeystore -srckeystore keytool-rsa.jks -srcstorepass $PW -srcstoretype JKS \
  -destkeystore keytool-rsa.p12 -deststoretype PKCS12 -deststorepass $PW 2>/dev/null
keytool -exportcert -rfc -alias server -keystore keytool-rsa.jks -storepass $PW \
  -file keytool-rsa-cert.pem 2>/dev/null
keytool -importcert -noprompt -alias ca -file ca.pem -storetype JKS \
  -keystore keytool-trust.jks -storepass $PW 2>/dev/null
keytool -importcert -noprompt -alias ca -file ca.pem -storetype PKCS12 \
  -keystore keytool-trust.p12 -storepass $PW 2>/dev/null

# pyjks, as kazoo's test harness writes its keystore.jks and truststore.jks: the
# openssl key (PKCS#1, pyjks's "rsa_raw") with its certificate, and the CA.
python3 - <<'PY'
import jks, subprocess
def der(args):
    return subprocess.run(["openssl"] + args + ["-outform", "DER"], check=True,
                          capture_output=True).stdout
cert = der(["x509", "-in", "server-cert.pem"])
ca = der(["x509", "-in", "ca.pem"])
rsa = der(["rsa", "-in", "server-key.pem", "-traditional"])
jks.KeyStore.new("jks", [jks.PrivateKeyEntry.new("server cert", [cert, ca], rsa, "rsa_raw")]
                 ).save("pyjks-keystore.jks", "apassword")
jks.KeyStore.new("jks", [jks.TrustedCertEntry.new("kazoo ca", ca)]
                 ).save("pyjks-truststore.jks", "apassword")
PY
rm ca-key.pem
ls -l
