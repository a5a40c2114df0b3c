"""The loopback rule: which hosts are this machine, where plain http:// is allowed (the
local server).  One rule for the settings (an http:// API URL), the transport (refusing
http:// elsewhere) and the build page's address.  Runs in every process."""

from __future__ import annotations

LOOPBACK_NAMES = {"localhost", "127.0.0.1", "::1"}


def is_loopback(host: str | None) -> bool:
    """A loopback name or address: localhost, *.localhost, 127.0.0.0/8, ::1 (a name like
    127.example.com is not one)."""
    if not host:
        return False
    host = host.strip("[]").lower().rstrip(".")
    if host in LOOPBACK_NAMES or host.endswith(".localhost"):
        return True
    import ipaddress  # only here: the uploader's start-up does without it

    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
