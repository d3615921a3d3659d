"""Sweeps: points, groups, launchers, selection, comparisons, nested CV."""
