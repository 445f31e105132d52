#!/bin/sh
# bind-keys (one shot): a TSIG key for named (/keys) and its secret for Hostmaster
# (/secrets/tsig/<name>), made once per volume; the demo zone file copied where named may write.
# Both key files are created 0600 (umask 077): never readable by anyone else, not for a moment.
# The directories and owners can be given (KEYS_DIR, SECRETS_DIR, ZONES_DIR, SEED_DIR, NAMED_USER,
# SECRETS_OWNER): tests/unit/test_deploy.py runs this script in a directory of its own.
set -eu
KEY=${TSIG_KEY_NAME:-hostmaster-key}
KEYS=${KEYS_DIR:-/keys}
SECRETS=${SECRETS_DIR:-/secrets}
ZONES=${ZONES_DIR:-/zones}
SEED=${SEED_DIR:-/seed}
umask 077
if [ ! -s "$KEYS/$KEY.key" ]; then
  tsig-keygen -a hmac-sha256 "$KEY" >"$KEYS/$KEY.key"
fi
chown "${NAMED_USER:-bind}" "$KEYS/$KEY.key"  # named runs as bind (-u bind) and reads it
mkdir -p "$SECRETS/tsig"
sed -n 's/.*secret "\(.*\)";.*/\1/p' "$KEYS/$KEY.key" >"$SECRETS/tsig/$KEY"
chown -R "${SECRETS_OWNER:-10001:0}" "$SECRETS"  # the Hostmaster containers run as uid 10001, group 0
chmod 0770 "$SECRETS" "$SECRETS/tsig"
# The zone file is no secret, and named (as bind) writes its journal beside it.
[ -f "$ZONES/example.test.zone" ] || cp "$SEED/example.test.zone" "$ZONES/example.test.zone"
chmod 0666 "$ZONES/example.test.zone"
chmod 0777 "$ZONES"
echo "TSIG key $KEY ready"
