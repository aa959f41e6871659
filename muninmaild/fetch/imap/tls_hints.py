"""What to do about a server certificate that did not verify, in words that name the likely
cause: a pure function of the error and the account's settings.

OpenSSL's verify codes (include/openssl/x509_vfy.h) tell a name that does not match from an
authority that is not trusted, and a certificate that has expired from both.
"""

from __future__ import annotations

import ipaddress

from muninmaild.config.settings import AccountSettings

EXPIRED = 10
NOT_YET_VALID = 9
HOSTNAME_MISMATCH = 62
IP_ADDRESS_MISMATCH = 64


def is_address(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def certificate_hint(settings: AccountSettings, verify_code: int) -> str:
    """The likely cause of a failed certificate check, and the setting that fixes it."""
    server = settings.server
    if verify_code in (HOSTNAME_MISMATCH, IP_ADDRESS_MISMATCH):
        if is_address(server):
            return (
                f"server is the address {server}, and the certificate names the server by a "
                "name: set server to that name"
            )
        return f"the certificate is not for {server}: set server to the name it was issued for"
    if verify_code in (EXPIRED, NOT_YET_VALID):
        return "the certificate is outside its dates (expired, or this host's clock is wrong)"
    if settings.ca_file:
        return f"ca_file {settings.ca_file} does not hold the authority that signed it"
    return "for a server with its own certificate authority set ca_file"
