"""host_info: normalised platform/arch, container/virtual/physical from a fake file tree."""

from __future__ import annotations

import socket
import sys
from pathlib import Path

import pytest

from behave_bstack.origin import host
from behave_bstack.origin.host import _arch_name, _host_type, _platform_name, host_info


def write(root: Path, relative: str, text: str = "") -> None:
    path = root / relative.lstrip("/")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


HOST_CGROUP_V1 = "12:memory:/init.scope\n1:name=systemd:/init.scope\n0::/init.scope\n"
DOCKER_CGROUP_V1 = (
    "12:memory:/docker/3f0d9e8a7b6c5d4e3f2a1b0c9d8e7f6a5b4c3d2e1f0a9b8c7d6e5f4a3b2c1d0e\n"
    "0::/docker/3f0d9e8a7b6c5d4e3f2a1b0c9d8e7f6a5b4c3d2e1f0a9b8c7d6e5f4a3b2c1d0e\n"
)
# A Docker *host*: container overlays are mounted in its namespace too; not a container.
HOST_MOUNTINFO = (
    "22 1 259:2 / / rw,relatime shared:1 - ext4 /dev/nvme0n1p2 rw\n"
    "512 22 0:52 / /var/lib/docker/overlay2/abc/merged rw shared:270 - overlay overlay rw\n"
)
# Inside a cgroup-v2 container: the runtime bind-mounts /etc/hostname and /etc/hosts.
CONTAINER_MOUNTINFO = (
    "600 540 0:60 / / rw,relatime master:1 - overlay overlay rw\n"
    "612 600 259:2 /var/lib/docker/containers/3f0d/hostname /etc/hostname rw - ext4 /dev/x rw\n"
    "613 600 259:2 /var/lib/docker/containers/3f0d/hosts /etc/hosts rw - ext4 /dev/x rw\n"
)


def test_host_info_shape() -> None:
    info = host_info()
    assert set(info) <= {"hostname", "platform", "type", "version", "arch"}
    assert {"platform", "type"} <= set(info)
    assert info["type"] in {"container", "virtual", "physical"}
    assert info["platform"] == _platform_name(sys.platform)
    assert all(isinstance(value, str) and value for value in info.values())
    if sys.platform.startswith("linux"):
        assert info["platform"] == "linux"


def test_host_info_never_raises(monkeypatch: pytest.MonkeyPatch) -> None:
    def boom() -> str:
        raise OSError("no")

    class Uname:  # a system that names the node but not its release or machine
        node = "fallback-node"
        release = property(lambda self: boom())
        machine = property(lambda self: boom())

    monkeypatch.setattr(socket, "gethostname", boom)
    monkeypatch.setattr(host, "_uname", Uname)
    monkeypatch.setattr(host, "_host_type", lambda *a, **k: 1 / 0)  # even this
    info = host_info()
    assert info["hostname"] == "fallback-node"
    assert "version" not in info and "arch" not in info
    assert info["type"] == "physical"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("linux", "linux"),
        ("linux2", "linux"),
        ("darwin", "darwin"),
        ("win32", "win32"),
        ("cygwin", "win32"),
        ("freebsd14", "freebsd"),
        ("sunos5", "sunos5"),
    ],
)
def test_platform_names(raw: str, expected: str) -> None:
    assert _platform_name(raw) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("x86_64", "x64"),
        ("AMD64", "x64"),
        ("aarch64", "arm64"),
        ("arm64", "arm64"),
        ("ARM64", "arm64"),
        ("i686", "i686"),
        ("riscv64", "riscv64"),
    ],
)
def test_arch_names(raw: str, expected: str) -> None:
    assert _arch_name(raw) == expected


def test_bare_host_is_physical(tmp_path: Path) -> None:
    write(tmp_path, "/proc/1/cgroup", HOST_CGROUP_V1)
    write(tmp_path, "/proc/self/mountinfo", HOST_MOUNTINFO)
    write(tmp_path, "/proc/cpuinfo", "processor\t: 0\nflags\t\t: fpu vme sse2 avx2\n")
    write(tmp_path, "/sys/class/dmi/id/sys_vendor", "Dell Inc.\n")
    assert _host_type({}, str(tmp_path)) == "physical"


@pytest.mark.parametrize(
    ("relative", "text"),
    [
        ("/.dockerenv", ""),
        ("/run/.containerenv", ""),
        ("/proc/1/cgroup", DOCKER_CGROUP_V1),
        ("/proc/1/cgroup", "0::/kubepods/besteffort/pod1234/abcd\n"),
        ("/proc/self/mountinfo", CONTAINER_MOUNTINFO),
    ],
)
def test_container_markers(tmp_path: Path, relative: str, text: str) -> None:
    write(tmp_path, relative, text)
    assert _host_type({}, str(tmp_path)) == "container"


@pytest.mark.parametrize(
    "environ", [{"KUBERNETES_SERVICE_HOST": "10.96.0.1"}, {"container": "podman"}]
)
def test_container_environment_variables(tmp_path: Path, environ: dict[str, str]) -> None:
    assert _host_type(environ, str(tmp_path)) == "container"


@pytest.mark.parametrize(
    ("relative", "text"),
    [
        ("/sys/class/dmi/id/sys_vendor", "QEMU\n"),
        ("/sys/class/dmi/id/product_name", "VMware Virtual Platform\n"),
        ("/sys/class/dmi/id/product_name", "Virtual Machine\n"),
        ("/sys/class/dmi/id/sys_vendor", "Amazon EC2\n"),
        ("/sys/hypervisor/type", "xen\n"),
        ("/proc/sys/kernel/osrelease", "5.15.153.1-microsoft-standard-WSL2\n"),
        ("/proc/cpuinfo", "processor\t: 0\nflags\t\t: fpu sse2 hypervisor avx2\n"),
    ],
)
def test_virtual_machine_markers(tmp_path: Path, relative: str, text: str) -> None:
    write(tmp_path, relative, text)
    assert _host_type({}, str(tmp_path)) == "virtual"


def test_container_wins_over_virtual(tmp_path: Path) -> None:
    write(tmp_path, "/.dockerenv")
    write(tmp_path, "/proc/cpuinfo", "flags\t\t: fpu hypervisor\n")
    assert _host_type({}, str(tmp_path)) == "container"


def test_darwin_uses_the_hypervisor_sysctl(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "platform", "darwin")
    monkeypatch.setattr(host, "_is_container", lambda environ, root: False)
    monkeypatch.setattr(host, "_darwin_vmm_present", lambda: True)
    assert _host_type({}) == "virtual"
    monkeypatch.setattr(host, "_darwin_vmm_present", lambda: False)
    assert _host_type({}) == "physical"


def test_darwin_sysctl_is_safe_anywhere() -> None:
    result = host._darwin_vmm_present()
    assert isinstance(result, bool)
    if not sys.platform == "darwin":
        assert result is False
