"""Metrics and plots over the graph's tables. Pure code; never imports dagster."""
