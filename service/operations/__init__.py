"""What keeps the service healthy over time: the recovery job, retention, reconciliation reports,
dead letters, metrics.
"""
