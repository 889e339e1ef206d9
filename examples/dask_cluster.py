"""Index a tree on a Dask cluster: parse and embed tasks run on the cluster's workers.

    python examples/dask_cluster.py ~/src/myproject                 # starts a small local cluster
    python examples/dask_cluster.py ~/src/myproject tcp://host:8786 # uses an existing one

On real machines you start the cluster yourself (``dask scheduler`` on one host, ``dask worker
tcp://host:8786`` on each of the others, with codeindex installed on all of them) and pass its
address: ``codeindex rebuild PATH --scheduler tcp://host:8786``, or ``engine.scheduler`` in
``.codeindex.toml``. Workers receive file contents from this process and send chunks and vectors
back: they need no access to the tree, and the index is written here (docs/howto/run-on-a-dask-cluster.md).
"""

from __future__ import annotations

import sys

from codeindex import Index


def run(root: str, address: str) -> int:
    with Index(root) as index:
        report = index.rebuild(scheduler=address)
        print(f"rebuild on {report.scheduler}: {report.files_indexed} files, {report.chunks_embedded} chunks "
              f"embedded in {report.wall_s:.1f}s; embedding by worker: {report.stages.get('embed_s_by_worker')}")
    return 0


def main(root: str, address: str | None = None) -> int:
    if address is not None:
        return run(root, address)
    from distributed import LocalCluster

    # Two one-thread worker processes on this machine, reachable on loopback only.
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                      dashboard_address=None) as cluster:
        return run(root, cluster.scheduler_address)


if __name__ == "__main__":
    if len(sys.argv) not in (2, 3):
        sys.exit(__doc__)
    sys.exit(main(*sys.argv[1:]))
