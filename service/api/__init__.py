"""The REST API: thin routes over the business logic in ``service``."""
