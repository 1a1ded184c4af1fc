"""Real filesystem faults for end-to-end tests: a small filesystem that can really be filled,
a file the kernel really refuses to write, a filesystem the kernel really turns read-only.

Nothing here is a mock: the daemon's SQLite file lives on a filesystem of its own, and the faults
are the kernel's answers (ENOSPC, EPERM, EROFS) to the daemon's own write(2) calls.

How the small filesystem is made, first that works (`SMSGW_FULLFS_METHOD` forces one):

* ``tmpfs``: ``mount -t tmpfs -o size=…`` on a directory of the test (needs CAP_SYS_ADMIN).
* ``loop``: an ext4 image file (``mkfs.ext4 -m 0``: no blocks reserved for root, who would
  otherwise still find room) mounted with ``mount -o loop`` (needs root and a loop device).
* ``unshare``: the daemon starts inside a mount namespace of its own (``unshare --mount``, with
  ``--map-root-user`` when not root) that mounts the tmpfs before it execs the daemon; this
  process reaches that filesystem through ``/proc/PID/root``. Works unprivileged where user
  namespaces are allowed.

`immutable` (ext4's ``chattr +i``: write(2) on an already open descriptor fails with EPERM) and
`emergency_read_only` (ext4's ``trigger_fs_error`` with ``errors=remount-ro``: the kernel's own
forced read-only remount, which ignores open writers) need the ``loop`` filesystem.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

METHODS = ("tmpfs", "loop", "unshare")


class Unavailable(Exception):
    """This way of making a small filesystem does not work here; the message says why."""


def _run(*args: str, timeout: float = 30.0) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, timeout=timeout, check=False)


def _failed(what: str, result: subprocess.CompletedProcess[str]) -> Unavailable:
    text = (result.stderr or result.stdout).strip().replace("\n", " ")
    return Unavailable(f"{what} failed (exit {result.returncode}): {text}")


@dataclass
class SmallFs:
    """A filesystem of `size_mb` MiB at `mountpoint`.

    `mountpoint` is where the daemon sees it; `path` is where this process reaches it (the same
    directory, except for ``unshare``, where it exists only in the daemon's namespace and `path`
    goes through ``/proc/PID/root`` once `attach(pid)` named the daemon). `prefix` is put before
    the daemon's command line (``unshare`` only).
    """

    method: str
    mountpoint: Path
    size_mb: int
    image: Path | None = None
    prefix: list[str] = field(default_factory=list)
    _pid: int | None = None
    _mounted: bool = False

    def attach(self, pid: int) -> None:
        self._pid = pid

    @property
    def path(self) -> Path:
        if self.method != "unshare":
            return self.mountpoint
        if self._pid is None:
            raise RuntimeError("the unshare filesystem exists once the daemon started: attach()")
        return Path(f"/proc/{self._pid}/root") / self.mountpoint.relative_to("/")

    @property
    def device(self) -> str:
        """The block device of a ``loop`` filesystem (``loop3``), as /sys/fs/ext4 names it."""
        result = _run("findmnt", "-n", "-o", "SOURCE", str(self.mountpoint))
        return Path(result.stdout.strip()).name

    def mounted_options(self) -> str:
        return _run("findmnt", "-n", "-o", "OPTIONS", str(self.mountpoint)).stdout.strip()

    # -- making and removing ----------------------------------------------------------------

    def mount(self) -> None:
        self.mountpoint.mkdir(parents=True, exist_ok=True)
        if self.method == "tmpfs":
            self._mount_tmpfs()
        elif self.method == "loop":
            self._mount_loop()
        elif self.method == "unshare":
            self._prepare_unshare()
        else:
            raise ValueError(f"unknown method {self.method!r} (known: {', '.join(METHODS)})")

    def _mount_tmpfs(self) -> None:
        result = _run(
            "mount", "-t", "tmpfs", "-o", f"size={self.size_mb}m,mode=0755", "tmpfs",
            str(self.mountpoint),
        )  # fmt: skip
        if result.returncode != 0:
            raise _failed("mount -t tmpfs", result)
        self._mounted = True

    def _mount_loop(self, options: str = "errors=remount-ro") -> None:
        if shutil.which("mkfs.ext4") is None:
            raise Unavailable("mkfs.ext4 is not installed (e2fsprogs)")
        assert self.image is not None
        self.image.unlink(missing_ok=True)
        with self.image.open("wb") as image:
            image.truncate(self.size_mb * 1024 * 1024)
        # No journal: a journal abort (after trigger_fs_error) would outlive the remount.
        result = _run("mkfs.ext4", "-q", "-F", "-m", "0", "-O", "^has_journal", str(self.image))
        if result.returncode != 0:
            raise _failed("mkfs.ext4", result)
        result = _run("mount", "-o", f"loop,{options}", str(self.image), str(self.mountpoint))
        if result.returncode != 0:
            raise _failed("mount -o loop", result)
        self._mounted = True

    def _prepare_unshare(self) -> None:
        if shutil.which("unshare") is None:
            raise Unavailable("unshare is not installed (util-linux)")
        user = [] if os.geteuid() == 0 else ["--map-root-user"]
        script = 'mount -t tmpfs -o "size=$1m,mode=1777" tmpfs "$2" && shift 2 && exec "$@"'
        self.prefix = [
            "unshare", "--mount", "--propagation", "private", *user,
            "sh", "-c", script, "sh", str(self.size_mb), str(self.mountpoint),
        ]  # fmt: skip
        probe = _run(*self.prefix, "sh", "-c", f'test -w "{self.mountpoint}" && echo ok')
        if probe.returncode != 0 or probe.stdout.strip() != "ok":
            raise _failed("unshare --mount + mount -t tmpfs", probe)

    def unmount(self) -> None:
        """Remove the filesystem (the daemon must be gone: a busy mount is detached lazily)."""
        if not self._mounted:
            return
        self._mounted = False
        result = _run("umount", str(self.mountpoint))
        if result.returncode != 0:
            _run("umount", "-l", str(self.mountpoint))
        if self.image is not None:
            self.image.unlink(missing_ok=True)

    # -- faults -----------------------------------------------------------------------------

    def fill(self, name: str = "filler") -> tuple[Path, int]:
        """Write a file until the kernel answers ENOSPC; returns it and how many bytes fit."""
        filler = self.path / f"{name}-{uuid.uuid4().hex[:8]}"
        written = 0
        fd = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            for chunk in (1 << 20, 1 << 16, 1 << 12, 1 << 9, 1):
                block = b"\xa5" * chunk
                while True:
                    try:
                        count = os.write(fd, block)
                    except OSError as exc:
                        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
                            break
                        raise
                    written += count
        finally:
            os.close(fd)
        return filler, written

    def free_bytes(self) -> int:
        stats = os.statvfs(self.path)
        return stats.f_bavail * stats.f_frsize

    def set_immutable(self, paths: list[Path], on: bool) -> None:
        """ext4's immutable attribute (``chattr +i``/``-i``): even root's writes through a
        descriptor opened before are refused (EPERM)."""
        existing = [str(p) for p in paths if p.exists()]
        if not existing:
            return
        result = _run("chattr", "+i" if on else "-i", *existing)
        if result.returncode != 0:
            raise _failed(f"chattr {'+i' if on else '-i'}", result)

    def trigger_fs_error(self, text: str) -> None:
        """Report a filesystem error to ext4 through its own test hook; with
        ``errors=remount-ro`` the kernel remounts the filesystem read-only at once, whatever is
        open for writing (what happens after a real I/O error on the disk)."""
        hook = Path("/sys/fs/ext4") / self.device / "trigger_fs_error"
        if not hook.exists():
            raise Unavailable(f"{hook} does not exist (kernel without ext4 sysfs test hooks)")
        hook.write_text(text)

    def remount_fresh(self) -> None:
        """Unmount and mount the same image again, read-write (after a forced read-only)."""
        assert self.image is not None
        result = _run("umount", str(self.mountpoint))
        if result.returncode != 0:
            raise _failed("umount", result)
        self._mounted = False
        fsck = _run("e2fsck", "-f", "-y", str(self.image))
        if fsck.returncode not in (0, 1):  # 1: errors corrected
            raise _failed("e2fsck", fsck)
        result = _run(
            "mount", "-o", "loop,errors=remount-ro", str(self.image), str(self.mountpoint)
        )
        if result.returncode != 0:
            raise _failed("mount -o loop", result)
        self._mounted = True


def _methods() -> tuple[str, ...]:
    forced = os.environ.get("SMSGW_FULLFS_METHOD")
    return (forced,) if forced else METHODS


@contextlib.contextmanager
def small_filesystem(
    directory: Path, size_mb: int, methods: tuple[str, ...] | None = None
) -> Iterator[SmallFs]:
    """The first of `methods` that works, mounted at ``directory / "fs"``, removed afterwards.

    Raises `Unavailable` naming every method's error when none works.
    """
    reasons = []
    for method in methods or _methods():
        fs = SmallFs(method, directory / f"fs-{method}", size_mb, image=directory / "fs.img")
        try:
            fs.mount()
        except (Unavailable, OSError, subprocess.SubprocessError) as exc:
            fs.unmount()
            reasons.append(f"{method}: {exc}")
            continue
        try:
            yield fs
        finally:
            fs.unmount()
        return
    raise Unavailable("no small filesystem could be made here: " + "; ".join(reasons))
