"""Folding events: the faust app and its agents."""
