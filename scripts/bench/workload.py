#!/usr/bin/env python3
"""Benchmark workloads (dev-only: Bun cannot fork safely, Python can).

orphans N RATE   N double-forked orphans, RATE per second (0 = all at once).
                 Each grandchild waits until it has been reparented, stamps
                 its exit time (CLOCK_MONOTONIC ns) in shared memory and exits;
                 we watch with kill(pid, 0) until it is gone (reaped): a zombie
                 still answers kill 0. Prints one JSON line of lifetimes.
idle SECONDS     sleeps (for idle wakeups).
forkstorm N      forks and reaps N children itself (an unrelated tree).
"""
import json, mmap, os, struct, sys, time

POLL_S = 0.0002  # watcher poll interval: the granularity of "gone"
SLOT = 8


def now_ns():
    return time.clock_gettime_ns(time.CLOCK_MONOTONIC)


def orphans(count, rate):
    stamps = mmap.mmap(-1, count * SLOT)
    pid_read, pid_write = os.pipe()
    # At once: every grandchild blocks on this pipe; closing it releases all.
    release_read, release_write = os.pipe()
    pids, pending, gone = [], {}, {}

    def poll_once():
        for index, pid in list(pending.items()):
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                gone[index] = (now_ns() - struct.unpack_from("q", stamps, index * SLOT)[0]) / 1e6
                del pending[index]

    start = time.monotonic()
    for index in range(count):
        poll_once()
        while rate and time.monotonic() < start + index / rate:
            time.sleep(POLL_S)
            poll_once()
        middle = os.fork()
        if middle == 0:
            middle_pid = os.getpid()
            grandchild = os.fork()
            if grandchild == 0:
                os.close(release_write)
                while os.getppid() == middle_pid:  # until reparented to the reaper
                    time.sleep(0.0001)
                if not rate:
                    os.read(release_read, 1)
                struct.pack_into("q", stamps, index * SLOT, now_ns())
                os._exit(0)
            os.write(pid_write, struct.pack("i", grandchild))
            os._exit(0)
        os.waitpid(middle, 0)
        pid = struct.unpack("i", os.read(pid_read, 4))[0]
        pids.append(pid)
        pending[index] = pid
    os.close(release_write)
    created_s = time.monotonic() - start
    deadline = time.monotonic() + 10
    while pending and time.monotonic() < deadline:
        poll_once()
        time.sleep(POLL_S)
    lifetimes = sorted(gone.values())
    pick = lambda q: lifetimes[min(len(lifetimes) - 1, int(q * len(lifetimes)))] if lifetimes else None
    print(json.dumps({"count": count, "p50_ms": pick(0.5), "p99_ms": pick(0.99),
                      "max_ms": lifetimes[-1] if lifetimes else None, "leftover": len(pending),
                      "rate_per_s": round(count / created_s) if rate else None, "poll_ms": POLL_S * 1000}), flush=True)


def forkstorm(count):
    for _ in range(count):
        child = os.fork()
        if child == 0:
            os._exit(0)
        os.waitpid(child, 0)


if __name__ == "__main__":
    # Tells the runner the reaper is up: its CPU and wakeups count from here.
    print(json.dumps({"event": "start"}), flush=True)
    mode = sys.argv[1]
    if mode == "orphans":
        orphans(int(sys.argv[2]), float(sys.argv[3]))
    elif mode == "idle":
        time.sleep(float(sys.argv[2]))
    elif mode == "forkstorm":
        forkstorm(int(sys.argv[2]))
    else:
        sys.exit(f"unknown mode {mode}")
