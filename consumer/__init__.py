"""The Kafka consumer: turns request events into API calls (built in its own issue)."""
