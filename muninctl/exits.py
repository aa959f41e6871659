"""muninctl's exit codes (sysexits.h where one fits) and the exception that carries them."""

from __future__ import annotations

from muninmaild import protocol

OK = 0
REFUSED = 1  # the daemon answered with an error
USAGE = 2  # click's own code for a bad command line
UNREACHABLE = 69  # EX_UNAVAILABLE: no daemon at the socket
CANNOT_WRITE = 73  # EX_CANTCREAT: `metrics --output` could not write its file
TIMED_OUT = 75  # EX_TEMPFAIL: no answer in time, or wait-idle timed out
PROTOCOL = 76  # EX_PROTOCOL: the peer does not speak our protocol
NOT_ALLOWED = 77  # EX_NOPERM: the socket or the daemon refused us

_BY_CODE = {protocol.FORBIDDEN: NOT_ALLOWED, protocol.TIMEOUT: TIMED_OUT}


class Failure(Exception):
    """Ends muninctl with a one-line message on stderr and the given exit code."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.message = message
        self.exit_code = exit_code


def refused(error: protocol.ProtocolError) -> Failure:
    """An error answer of the daemon, as the failure muninctl ends with."""
    return Failure(f"{error.message} ({error.code})", _BY_CODE.get(error.code, REFUSED))
