#!/usr/bin/env bash
# The kafka-tls service of deploy/compose/secure.yml: runs once, as root, in
# the apache/kafka image (for its keytool) before the broker starts, and
# makes a development CA and the broker's TLS material:
#
#   $KAFKA_TLS_DIR (/etc/kafka/secrets, volume kafka-tls, the broker's only)
#     kafka.keystore.p12   PKCS#12: the broker's EC P-256 key and its
#                          certificate for the names kafka and localhost,
#                          signed by the CA (the chain included)
#     keystore_creds       its password, and the key's (the image's
#     key_creds            KAFKA_SSL_KEYSTORE_CREDENTIALS / _KEY_CREDENTIALS)
#   $KAFKA_CA_DIR (/etc/cratestream/kafka-ca, volume kafka-ca, mounted
#   read-only by every cratestream service)
#     ca.pem               the CA certificate the clients trust
#                          (CRATESTREAM_KAFKA_TLS_CA)
#
# Nothing is made when both exist. The CA's key is not kept: to renew,
# remove the volumes (docker compose ... down -v). Valid 825 days.
set -euo pipefail

broker=${KAFKA_TLS_DIR:-/etc/kafka/secrets}
clients=${KAFKA_CA_DIR:-/etc/cratestream/kafka-ca}
owner=${KAFKA_TLS_OWNER:-appuser} # the broker's user in the apache/kafka image

if [[ -s $broker/kafka.keystore.p12 && -s $clients/ca.pem ]]; then
	echo "kafka-tls: $broker/kafka.keystore.p12 and $clients/ca.pem exist; nothing to do"
	exit 0
fi

umask 077
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
pass=$work/pass
tr -dc 'A-Za-z0-9' </dev/urandom | head -c 32 >"$pass" || true
[[ $(wc -c <"$pass") -eq 32 ]]

kt() { keytool -noprompt "$@"; }
# The CA: a self-signed certificate allowed to sign certificates only.
kt -genkeypair -alias ca -dname "CN=cratestream development CA" -keyalg EC -groupname secp256r1 \
	-validity 825 -ext bc:c -ext ku:c=keyCertSign,cRLSign \
	-storetype PKCS12 -keystore "$work/ca.p12" -storepass:file "$pass"
kt -exportcert -rfc -alias ca -keystore "$work/ca.p12" -storepass:file "$pass" -file "$work/ca.pem"
# The broker's key, and its certificate signed by the CA for the names the
# clients dial: kafka (in the compose network), localhost (the host, 29092).
kt -genkeypair -alias kafka -dname "CN=kafka" -keyalg EC -groupname secp256r1 -validity 825 \
	-storetype PKCS12 -keystore "$work/kafka.p12" -storepass:file "$pass"
kt -certreq -alias kafka -keystore "$work/kafka.p12" -storepass:file "$pass" -file "$work/kafka.csr"
kt -gencert -alias ca -keystore "$work/ca.p12" -storepass:file "$pass" \
	-infile "$work/kafka.csr" -outfile "$work/kafka.pem" -rfc -validity 825 \
	-ext san=dns:kafka,dns:localhost -ext eku=serverAuth -ext ku:c=digitalSignature
# The signed chain replaces the self-signed certificate; the CA entry is only
# needed for keytool to build the chain.
kt -importcert -alias ca -file "$work/ca.pem" -keystore "$work/kafka.p12" -storepass:file "$pass"
kt -importcert -alias kafka -file "$work/kafka.pem" -keystore "$work/kafka.p12" -storepass:file "$pass"
kt -delete -alias ca -keystore "$work/kafka.p12" -storepass:file "$pass"

mkdir -p "$broker" "$clients"
cp "$work/kafka.p12" "$broker/kafka.keystore.p12"
cp "$pass" "$broker/keystore_creds"
cp "$pass" "$broker/key_creds" # a PKCS#12 key's password is the store's
chown "$owner:$owner" "$broker/kafka.keystore.p12" "$broker/keystore_creds" "$broker/key_creds"
chmod 0400 "$broker/kafka.keystore.p12" "$broker/keystore_creds" "$broker/key_creds"
cp "$work/ca.pem" "$clients/ca.pem"
chmod 0444 "$clients/ca.pem"
echo "kafka-tls: made $broker/kafka.keystore.p12 (kafka, localhost) and $clients/ca.pem"
