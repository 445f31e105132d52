#!/usr/bin/env bash
# setup (one shot, after migrate): register the demo zone at the compose BIND and make the two
# API clients a local run needs: dev-admin (its key printed in this service's log) and
# kafka-consumer (its key written where the consumer's secrets provider reads it).
set -euo pipefail
hostmaster zone add example.test --primary bind:53 --key hostmaster-key --update
key=$(hostmaster clients create kafka-consumer --scope write --zone '*' --rotate-if-exists)
umask 077
printf '%s' "$key" >"${HOSTMASTER_SECRETS_DIR:?}/hostmaster_consumer_api_key"  # as service/secrets.py reads it
admin=$(hostmaster clients create dev-admin --scope admin --zone '*' --rotate-if-exists)
echo "Admin key (shown once): $admin"
