"""The local Dask cluster runs code for whoever connects: it must accept its own run's client only.

Loopback is reachable by every local user, so without credentials any process on the machine could
connect during a rebuild and run code as the user indexing (``run_on_scheduler(os.getuid)`` returned 0
for a process of user ``nobody`` while root rebuilt).
"""

from __future__ import annotations

import operator
import subprocess
import sys
import urllib.error
import urllib.request

import pytest

from codeindex.engine.executor import DaskExecutor

NOBODY = 65534

_OUTSIDER = r"""
import os, sys
import distributed
from distributed import Client
from distributed.security import Security

address = sys.argv[1]
if os.geteuid() == 0:  # as another user, as the attack was; distributed is already imported
    os.setgroups([]); os.setgid(int(sys.argv[2])); os.setuid(int(sys.argv[2]))
port = address.rsplit(":", 1)[1]
attempts = {
    "as given": (address, None),
    "plain tcp": (f"tcp://127.0.0.1:{port}", None),
    "tls, own certificate": (f"tls://127.0.0.1:{port}", Security.temporary()),
}
for name, (addr, security) in attempts.items():
    try:
        client = Client(addr, timeout="5s", security=security)
    except Exception as exc:
        print("REFUSED", name, type(exc).__name__)
        continue
    try:
        print("CONNECTED", name, "uid", client.run_on_scheduler(os.getuid))
    except Exception as exc:
        print("CONNECTED-BUT-FAILED", name, type(exc).__name__)
    finally:
        client.close()
"""


@pytest.mark.cluster
@pytest.mark.slow
@pytest.mark.timeout(300)
@pytest.mark.parametrize("gpu_devices", [(), (0,)], ids=["cpu-cluster", "gpu-spec-cluster"])
def test_a_client_without_the_runs_credentials_is_refused(gpu_devices: tuple[int, ...]) -> None:
    # The GPU cluster's workers are ordinary processes offering a GPU resource: it starts without a GPU.
    executor = DaskExecutor(None, n_workers=1, gpu_devices=gpu_devices)
    try:
        assert executor.client.submit(operator.add, 1, 2).result() == 3  # its own client works
        address = executor.client.scheduler.address
        proc = subprocess.run([sys.executable, "-c", _OUTSIDER, address, str(NOBODY)], capture_output=True,
                              text=True, timeout=180, check=False)
        http_port = executor.client.scheduler_info().get("services", {}).get("dashboard")
        served = {}
        for page in ("/info/main/workers.html", "/json/identity.json", "/health"):  # plain HTTP, anyone's
            try:
                served[page] = urllib.request.urlopen(f"http://127.0.0.1:{http_port}{page}", timeout=10).status
            except urllib.error.HTTPError as exc:
                served[page] = exc.code
    finally:
        executor.close()
    assert set(served.values()) == {404}, served
    out = proc.stdout + proc.stderr
    assert "CONNECTED" not in out, out
    assert out.count("REFUSED") == 3, out
    assert address.startswith("tls://"), address
