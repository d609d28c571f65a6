"""Showing: panel definitions rendered to Grafana JSON and the built-in page."""
