"""The machine a run executed on: ``host_info`` for start build (tra-api.md §2.1).

Cheap and total: a few small file reads on Linux, one sysctl on macOS, two registry reads
on Windows; no subprocesses, never raises.  ``version`` is the kernel's release, as
``uname -r`` (macOS: Darwin's, e.g. 23.4.0) or Windows' ``major.minor.build``.
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
    """os.uname() where there is one; importing `platform` costs a few ms of every run
    (on Windows it may even start `cmd /c ver`: host_info does not use it there)."""
    if hasattr(os, "uname"):
        return os.uname()
    import platform

    return platform.uname()


def _windows_version() -> str:
    version = sys.getwindowsversion()
    # platform_version: the real one, even for an interpreter whose manifest predates it.
    major, minor, build = getattr(version, "platform_version", None) or version[:3]
    return f"{major}.{minor}.{build}"


def _windows_arch(environ: Mapping[str, str]) -> str:
    # A 32-bit interpreter on 64-bit Windows sees PROCESSOR_ARCHITEW6432 = the machine's.
    raw = environ.get("PROCESSOR_ARCHITEW6432") or environ.get("PROCESSOR_ARCHITECTURE") or ""
    return _arch_name(raw)


def _windows_bios() -> str:
    """The BIOS's maker and product as Windows records them (a seam for tests)."""
    import winreg

    values = []
    with winreg.OpenKey(winreg.HKEY_LOCAL_MACHINE, r"HARDWARE\DESCRIPTION\System\BIOS") as key:
        for name in ("SystemManufacturer", "SystemProductName", "BaseBoardManufacturer"):
            try:
                values.append(str(winreg.QueryValueEx(key, name)[0]))
            except OSError:
                continue
    return " ".join(values)


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


def _host_type(environ: Mapping[str, str], root: str = "", system: str | None = None) -> str:
    """Container, virtual or physical; ``root`` prefixes every path (tests use a fake tree).
    ``system``: sys.platform unless a test says otherwise."""
    try:
        if (system or sys.platform) == "win32":
            if environ.get("KUBERNETES_SERVICE_HOST") or environ.get("container"):
                return "container"
            bios = _windows_bios().lower()
            return "virtual" if any(m in bios for m in _VM_MARKERS) else "physical"
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
    if sys.platform == "win32":
        node = lambda: os.environ.get("COMPUTERNAME", "")  # noqa: E731
        version, arch = _windows_version, lambda: _windows_arch(os.environ)
    else:
        node = lambda: _uname().node  # noqa: E731
        version, arch = (lambda: _uname().release), (lambda: _arch_name(_uname().machine))
    info = {
        "hostname": _safe(socket.gethostname) or _safe(node),
        "platform": _platform_name(sys.platform),
        "type": _safe(lambda: _host_type(os.environ)) or "physical",
        "version": _safe(version),
        "arch": _safe(arch),
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
