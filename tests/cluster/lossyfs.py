"""A node's data directory on lossyfs (tools/lossyfs), the project's power-loss filesystem: a FUSE mount of a
backing directory that keeps file data written since the last fsync in memory. `power_loss()` drops all of
it, as a power cut drops the page cache; namespace changes (create, rename, unlink) are kept, as on ext4.
Every mount made here is unmounted when it closes, also after a failure."""

import os
import signal
import socket
import subprocess
import tempfile
import time
from itertools import count
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
_SOCKETS = count()
LOSSYFS = os.environ.get("LOSSYFS_BIN", str(ROOT / "target" / "release" / "lossyfs"))


def unavailable():
    """Why a lossyfs mount cannot work on this machine, or None."""
    if not Path("/dev/fuse").exists():
        return "no /dev/fuse on this machine (FUSE is needed for power-loss tests)"
    if not os.access(LOSSYFS, os.X_OK):
        return f"no lossyfs binary at {LOSSYFS} (cargo build --release -p lossyfs, or set LOSSYFS_BIN)"
    if os.geteuid() != 0 and not any(Path(d, "fusermount3").exists() for d in os.environ["PATH"].split(":")):
        return "not root and no fusermount3 (Debian's fuse3)"
    return None


def mounted_at(path):
    """(source, filesystem type) of the mount exactly at `path`, or None."""
    target = os.path.realpath(path)
    found = None
    with open("/proc/self/mounts") as mounts:
        for line in mounts:
            fields = line.split()
            if fields[1].encode().decode("unicode_escape") == target:
                found = (fields[0], fields[2])  # the last mount at a path is the one in effect
    return found


class LossyMount:
    def __init__(self, backing, mountpoint, log_path):
        self.backing = Path(backing)
        self.mountpoint = Path(mountpoint)
        # A Unix socket path must fit in 108 bytes, which a test's tmp directory may not leave room for.
        self.control = Path(tempfile.gettempdir()) / f"lossyfs-{os.getpid()}-{next(_SOCKETS)}.sock"
        self.log_path = Path(log_path)
        self.proc = None

    def start(self, timeout=10):
        assert self.proc is None, "already mounted"
        self.backing.mkdir(parents=True, exist_ok=True)
        self.mountpoint.mkdir(parents=True, exist_ok=True)
        self.control.unlink(missing_ok=True)
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen([LOSSYFS, str(self.backing), str(self.mountpoint), "--control", str(self.control)],
                                     stdout=log, stderr=log)
        deadline = time.time() + timeout
        while mounted_at(self.mountpoint) != ("lossyfs", "fuse") or not self.control.exists():
            if self.proc.poll() is not None:
                raise RuntimeError(f"lossyfs exited with {self.proc.returncode}: {self.log_path.read_text()[-2000:]}")
            if time.time() > deadline:
                self.close()
                raise RuntimeError(f"lossyfs did not mount {self.mountpoint} within {timeout} s")
            time.sleep(0.02)
        return self

    def command(self, line):
        with socket.socket(socket.AF_UNIX) as s:
            s.settimeout(30)
            s.connect(str(self.control))
            s.sendall(f"{line}\n".encode())
            answer = s.makefile().readline().strip()
        assert answer.startswith("ok"), f"lossyfs answered {answer!r} to {line!r}"
        return dict(field.split("=") for field in answer.split()[1:])

    def power_loss(self):
        """Drops every unsynced byte; returns {'files': F, 'bytes': B} of what was dropped."""
        return {k: int(v) for k, v in self.command("power-loss").items()}

    def request_stop(self):
        """Asks lossyfs to unmount and exit (SIGTERM), without waiting: `close()` waits."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)

    def close(self, timeout=10):
        """Unmounts (SIGTERM to lossyfs); if that does not work in time, detaches the mount and kills it."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.request_stop()
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                subprocess.run(["umount", "-l", str(self.mountpoint)], capture_output=True, timeout=30)
                self.proc.kill()
                self.proc.wait()
        if mounted_at(self.mountpoint) is not None:
            subprocess.run(["umount", "-l", str(self.mountpoint)], capture_output=True, timeout=30)
        self.control.unlink(missing_ok=True)
        self.proc = None
