"""The ``hostmaster`` command, the composition root of every process but the API (service/app.py)."""
