"""The Hostmaster service, one room per concern; imports go one way, down this list:

    cli/         the ``hostmaster`` command (on top of everything)
    app.py, api/, console/   the ASGI application, the REST API, the web console
    operations/  recovery, retention, reconciliation reports, dead letters, metrics
    requests/    accepting a write (alone or in a batch), its payload, the request tracker
    planning/    change sets played on the desired state, the rules, automatic PTRs
    registry/    zones, desired RRsets as read, API clients and their quotas
    dns/, core/  names and record values; settings, secrets, errors, logs, context, broker and Kafka

with db/ (the tables and their schemas) beneath them all; workers/ and consumer/ stand beside api/.
"""
