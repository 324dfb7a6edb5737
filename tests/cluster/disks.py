"""Small data disks for a local cluster: each node's data directory on an ext4 filesystem of its own, in a loop
image the test creates and always unmounts. A real filesystem keeps fsync's meaning; a small one can be filled
on command, for the full-disk fault, and emptied again to heal it."""

import atexit
import os
import subprocess
from pathlib import Path


class Disk:
    def __init__(self, image, mountpoint, size_mb):
        self.image = Path(image)
        self.mountpoint = Path(mountpoint)
        self.size_mb = size_mb
        self.mounted = False
        self.fillers = []
        atexit.register(self.close)

    def mount(self):
        if self.mounted:
            return self
        self.image.parent.mkdir(parents=True, exist_ok=True)
        self.mountpoint.mkdir(parents=True, exist_ok=True)
        if not self.image.exists():
            with open(self.image, "wb") as f:
                f.truncate(self.size_mb << 20)
            # -m 0: no blocks reserved for root, who runs the broker here, so "full" means full.
            subprocess.run(["mkfs.ext4", "-q", "-F", "-m", "0", str(self.image)], check=True)
        subprocess.run(["mount", "-o", "loop", str(self.image), str(self.mountpoint)], check=True)
        self.mounted = True
        return self

    def free_bytes(self):
        st = os.statvfs(self.mountpoint)
        return st.f_bavail * st.f_frsize

    def fill(self):
        """Takes every free block: the broker's next write that needs space gets ENOSPC."""
        size = self.free_bytes()
        while size >= 4096:
            path = self.mountpoint / f"filler-{len(self.fillers)}"
            try:
                with open(path, "wb") as f:
                    os.posix_fallocate(f.fileno(), 0, size)
                self.fillers.append(path)
            except OSError:
                path.unlink(missing_ok=True)
                size //= 2
                continue
            size = self.free_bytes()

    def empty(self):
        for path in self.fillers:
            path.unlink(missing_ok=True)
        self.fillers.clear()

    def close(self):
        if not self.mounted:
            return
        self.empty()
        subprocess.run(["umount", str(self.mountpoint)], check=False, capture_output=True)
        if subprocess.run(["mountpoint", "-q", str(self.mountpoint)]).returncode == 0:
            subprocess.run(["umount", "-l", str(self.mountpoint)], check=False)
        self.mounted = False
