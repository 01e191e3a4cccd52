"""Engagement reports: aggregation (one place computes every number) and output formats."""
