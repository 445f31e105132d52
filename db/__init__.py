"""Persistence: SQLModel tables, the engine factory and Alembic migrations.

Nothing in this package imports the service, the workers or the consumer.
"""
