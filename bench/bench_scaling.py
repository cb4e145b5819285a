"""Throughput and peak memory per worker of the scaling pipeline (synthetic truth -> SGS
budget on a LocalCluster with a memory limit per worker), for 1 and 2 workers.

    python bench/bench_scaling.py [--n-time 32768] [--workers 1 2]

The default input is 4 GiB (32768 times x 8192 cells x 2 variables, float64), several times
the memory given to the workers (768 MiB each). Prints one line per worker count.
"""

from __future__ import annotations

import argparse
import logging
import resource
import sys
import time

from dask.distributed import Client, LocalCluster, wait

from nnparam import scaling, tracer

MEMORY_LIMIT = 768 * 2**20  # bytes per worker, as in the chapter


def peak_memory() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def run(workers: int, n_time: int, n: int = 8192, factor: int = 32, chunk: int = 32) -> str:
    truth = scaling.synthetic_truth(n_time=n_time, n=n, chunk_time=chunk)
    size = (truth["q"].nbytes + truth["u"].nbytes) / 2**20
    with LocalCluster(n_workers=workers, threads_per_worker=1, memory_limit=MEMORY_LIMIT,
                      processes=True, dashboard_address=None,
                      silence_logs=logging.ERROR) as cluster, Client(cluster) as client:
        client.run(lambda: __import__("nnparam.tracer"))
        start = time.perf_counter()
        # reduce every chunk to a few numbers so that nothing piles up on the client
        budget = tracer.sgs_budget(truth, factor)
        wait(client.compute(budget["sgs_tendency"].std()))
        elapsed = time.perf_counter() - start
        peaks = client.run(peak_memory).values()
    peak = max(peaks) / 2**20
    bounded = "within" if peak < MEMORY_LIMIT / 2**20 else "OVER"
    return (f"workers={workers}: {size:.0f} MiB in {elapsed:.1f} s = {size / elapsed:.0f} MiB/s; "
            f"peak per worker {peak:.0f} MiB ({bounded} the {MEMORY_LIMIT / 2**20:.0f} MiB "
            f"limit; input = {size / (workers * MEMORY_LIMIT / 2**20):.1f} x cluster memory)")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n-time", type=int, default=32768, help="times in the input")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    args = parser.parse_args(argv)
    for workers in args.workers:
        print(run(workers, args.n_time), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
