"""The machine a run executed on: ``host_info`` for start build (tra-api.md §2.1).

Cheap and total: a few small file reads on Linux, no subprocesses, never raises.
"""

from __future__ import annotations

import os
import socket
import sys
from collections.abc import Callable, Mapping

__all__ = ["host_info"]

_ARCH = {
    "x86_64": "x64",
    "amd64": "x64",
    "x64": "x64",
    "aarch64": "arm64",
    "arm64": "arm64",
    "armv8": "arm64",
    "armv8l": "arm64",
}

# Substrings of PID 1's cgroup path (cgroup v1) that only appear inside containers; on a
# host PID 1 is the init system, in "/" or "/init.scope".
_CGROUP_MARKERS = (
    "/docker/",
    "/docker-",
    "/kubepods",
    "/containerd/",
    "/lxc/",
    "/libpod-",
    "/actions_job/",
)

# Container runtimes bind-mount these files into the container (cgroup v2 leaves
# /proc/1/cgroup as "0::/", so this is the signal that survives). A host never has a
# mount point here; mountinfo's 5th field is the mount point.
_CONTAINER_MOUNTS = ("/etc/hostname", "/etc/hosts")

# DMI vendor/product strings and the hypervisor CPU flag that virtual machines report.
_VM_MARKERS = (
    "kvm",
    "qemu",
    "vmware",
    "virtualbox",
    "innotek",
    "xen",
    "bochs",
    "parallels",
    "amazon ec2",
    "google compute engine",
    "openstack",
    "virtual machine",  # Hyper-V's product_name
    "hvm domu",
    "bhyve",
    "digitalocean",
)


def _read(path: str, limit: int = 65536) -> str:
    try:
        with open(path, "rb") as handle:
            return handle.read(limit).decode("utf-8", "replace")
    except (OSError, ValueError):
        return ""


def _uname():
    """os.uname() where there is one; importing `platform` costs a few ms of every run."""
    if hasattr(os, "uname"):
        return os.uname()
    import platform

    return platform.uname()


def _platform_name(name: str) -> str:
    if name.startswith("linux"):
        return "linux"
    if name in ("win32", "cygwin", "msys"):
        return "win32"
    if name.startswith("freebsd"):
        return "freebsd"
    return name


def _arch_name(machine: str) -> str:
    return _ARCH.get(machine.lower(), machine)


def _is_container(environ: Mapping[str, str], root: str) -> bool:
    if environ.get("KUBERNETES_SERVICE_HOST") or environ.get("container"):
        return True  # Kubernetes pods; systemd-nspawn/podman set $container
    for marker in ("/.dockerenv", "/run/.containerenv"):
        if os.path.exists(root + marker):
            return True
    cgroup = _read(root + "/proc/1/cgroup")
    if any(marker in cgroup for marker in _CGROUP_MARKERS):
        return True
    for line in _read(root + "/proc/self/mountinfo", 1 << 20).splitlines():
        fields = line.split(" ", 5)
        if len(fields) > 4 and fields[4] in _CONTAINER_MOUNTS:
            return True
    return False


def _is_virtual(root: str) -> bool:
    if sys.platform == "darwin" and not root:
        return _darwin_vmm_present()
    # Linux (the files simply don't exist elsewhere).
    dmi = " ".join(
        _read(f"{root}/sys/class/dmi/id/{name}", 256)
        for name in ("sys_vendor", "product_name", "board_vendor")
    ).lower()
    if any(marker in dmi for marker in _VM_MARKERS):
        return True
    if _read(f"{root}/sys/hypervisor/type", 64).strip():
        return True  # Xen guests
    if "microsoft" in _read(f"{root}/proc/sys/kernel/osrelease", 256).lower():
        return True  # WSL2 runs in a Hyper-V VM
    for line in _read(f"{root}/proc/cpuinfo", 1 << 20).splitlines():
        if line.startswith("flags") and "hypervisor" in line.partition(":")[2].split():
            return True  # x86 CPUID "running under a hypervisor" bit
    return False


def _darwin_vmm_present() -> bool:
    try:
        import ctypes
        import ctypes.util

        libc = ctypes.CDLL(ctypes.util.find_library("c"))
        value = ctypes.c_int(0)
        size = ctypes.c_size_t(ctypes.sizeof(value))
        rc = libc.sysctlbyname(
            b"kern.hv_vmm_present", ctypes.byref(value), ctypes.byref(size), None, 0
        )
        return rc == 0 and value.value == 1
    except Exception:
        return False


def _host_type(environ: Mapping[str, str], root: str = "") -> str:
    """Container, virtual or physical; ``root`` prefixes every path (tests use a fake tree)."""
    try:
        if _is_container(environ, root):
            return "container"
        if _is_virtual(root):
            return "virtual"
    except Exception:
        pass
    return "physical"


def _safe(getter: Callable[[], object]) -> str:
    try:
        value = getter()
        return value if isinstance(value, str) else ""
    except Exception:
        return ""


def host_info() -> dict[str, str]:
    """``host_info`` for start build: hostname, platform, type, version, arch.

    Values the platform cannot tell are left out; never raises.
    """
    info = {
        "hostname": _safe(socket.gethostname) or _safe(lambda: _uname().node),
        "platform": _platform_name(sys.platform),
        "type": _safe(lambda: _host_type(os.environ)) or "physical",
        "version": _safe(lambda: _uname().release),
        "arch": _safe(lambda: _arch_name(_uname().machine)),
    }
    return {key: value for key, value in info.items() if value}


def behave_version() -> str:
    """behave's version (behave.__version__ exists in 1.2.6 and 1.3; package metadata
    as a fallback is slower to read)."""
    try:
        import behave

        return str(behave.__version__)
    except (ImportError, AttributeError):
        pass
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("behave")
    except PackageNotFoundError:
        return "unknown"
