#!/usr/bin/env bash
# setup (one shot, after migrate): register the demo zone at the compose BIND and make the API
# clients a local run needs: dev-admin (its key printed in this service's log), kafka-demo (the
# demo producer's client, bound to dns.requests) and kafka-consumer (a delegate; its key written
# where the consumer's secrets provider reads it).
set -euo pipefail
hostmaster zone add example.test --primary bind:53 --key hostmaster-key --update
# Events on dns.requests act as kafka-demo (the compose consumer binds the topic to it); the
# consumer's own key is a delegate that can do nothing by itself.
hostmaster clients create kafka-demo --scope write --zone example.test --rotate-if-exists >/dev/null
key=$(hostmaster clients create kafka-consumer --scope delegate --rotate-if-exists)
umask 077
printf '%s' "$key" >"${HOSTMASTER_SECRETS_DIR:?}/hostmaster_consumer_api_key"  # as service/core/secrets.py reads it
admin=$(hostmaster clients create dev-admin --scope admin --zone '*' --rotate-if-exists)
echo "Admin key (shown once): $admin"
