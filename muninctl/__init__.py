"""muninctl: the command-line client of muninmaild's control socket."""

__version__ = "0.1.0"
