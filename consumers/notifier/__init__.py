"""The notifier daemon: alerts from ``audit.alerts.v1`` fanned out to the configured routes."""
