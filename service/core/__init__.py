"""What every process stands on: settings, secrets, the exception tree, logging, the request's
context, and the clients of the broker and Kafka.
"""
