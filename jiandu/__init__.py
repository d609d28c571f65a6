"""Composition root: settings, the CLI and the embedded runtime wire the tiers together."""
