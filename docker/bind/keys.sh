#!/bin/sh
# bind-keys (one shot): a TSIG key for named (/keys) and its secret for Hostmaster
# (/secrets/tsig/<name>), made once per volume; the demo zone file copied where named may write.
set -eu
KEY=${TSIG_KEY_NAME:-hostmaster-key}
if [ ! -s "/keys/$KEY.key" ]; then
  tsig-keygen -a hmac-sha256 "$KEY" >"/keys/$KEY.key"
fi
mkdir -p /secrets/tsig
sed -n 's/.*secret "\(.*\)";.*/\1/p' "/keys/$KEY.key" >"/secrets/tsig/$KEY"
[ -f /zones/example.test.zone ] || cp /seed/example.test.zone /zones/example.test.zone
chmod 0644 "/keys/$KEY.key" "/secrets/tsig/$KEY"
chmod 0666 /zones/example.test.zone
chmod 0777 /zones
chown -R 10001:0 /secrets  # the Hostmaster containers run as uid 10001, group 0
chmod 0770 /secrets /secrets/tsig
echo "TSIG key $KEY ready"
