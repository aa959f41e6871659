"""muninmaild: the muninmail daemon."""

__version__ = "0.1.0"
