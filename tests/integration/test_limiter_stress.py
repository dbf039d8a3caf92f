"""Four processes of four threads hammer one key on the real private Redis, clocked by Redis TIME.

The contract: with a limit of N, no sliding 1-second window sees more than N
grants from all of them together, and at least 0.95 N are granted per second
while there is work. The windows are counted on the clock the script decided
with (Redis ``TIME``, returned with each grant): that is the limiter's own
contract, exact and independent of this busy machine's scheduling. The same
grants stamped with the machine's monotonic clock right after the answer came
back (what a server would see, minus the network) are checked against the
latency-spread budget the safety margin leaves.
"""

from __future__ import annotations

import multiprocessing
import threading
import time
from bisect import bisect_right

from dropq.workers.limiter import LimiterPolicy, RateLimiter, RedisStore
from dropq.workers.limiter.gcra import latency_spread_budget_us

RATE = 50
PROCESSES = 4
THREADS = 4
DURATION_S = 3.0
# Spawned processes need about a second to import; all start together at this offset.
START_DELAY_S = 2.0
# The first grants come before every thread has joined in; the steady part starts after this.
WARMUP_US = 300_000


def busiest_window(stamps_us: list[int], window_us: int = 1_000_000) -> int:
    """The most stamps in any closed window ``[t, t + window]`` (windows start at a stamp, which is the worst case)."""
    ordered = sorted(stamps_us)
    return max((bisect_right(ordered, t + window_us) - i for i, t in enumerate(ordered)), default=0)


def _hammer(redis_url: str, start_at: float, stop_at: float, out: multiprocessing.Queue[list[tuple[int, int]]]) -> None:
    import redis

    limiter = RateLimiter(RedisStore(redis.Redis.from_url(redis_url)), "stress", RATE)
    grants: list[tuple[int, int]] = []
    lock = threading.Lock()

    def work() -> None:
        mine: list[tuple[int, int]] = []
        time.sleep(max(0.0, start_at - time.time()))
        while time.time() < stop_at:
            grant = limiter.acquire_grant()
            local_us = time.monotonic_ns() // 1000
            if grant.decision.allowed:
                mine.append((grant.clock_us, local_us))
            else:
                # How a task waits a short refusal out (RateLimiter.acquire_waiting): it sleeps it.
                time.sleep(grant.decision.retry_after_ms / 1000)
        with lock:
            grants.extend(mine)

    threads = [threading.Thread(target=work) for _ in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    out.put(grants)


def test_four_processes_of_four_threads_never_exceed_n_per_second_and_sustain_095_n(redis_url: str) -> None:
    """16 contenders over 3 s at N=50: busiest Redis-clock second <= N, steady rate >= 0.95 N."""
    # Given
    context = multiprocessing.get_context("spawn")
    out: multiprocessing.Queue[list[tuple[int, int]]] = context.Queue()
    start_at = time.time() + START_DELAY_S
    stop_at = start_at + DURATION_S
    processes = [context.Process(target=_hammer, args=(redis_url, start_at, stop_at, out)) for _ in range(PROCESSES)]
    # When
    for process in processes:
        process.start()
    grants = [g for _ in processes for g in out.get(timeout=30)]
    for process in processes:
        process.join(timeout=10)
    # Then
    redis_us = sorted(g[0] for g in grants)
    local_us = sorted(g[1] for g in grants)
    steady = [t for t in redis_us if t >= redis_us[0] + WARMUP_US]
    steady_rate = (len(steady) - 1) / ((steady[-1] - steady[0]) / 1e6)
    busiest = busiest_window(redis_us)
    busiest_local = busiest_window(local_us)
    spread_us = max(loc - red for red, loc in grants) - min(loc - red for red, loc in grants)
    print(
        f"\nN={RATE} grants={len(grants)} busiest_redis={busiest} busiest_local={busiest_local}"
        f" steady={steady_rate:.2f}/s ({steady_rate / RATE:.3f} N) latency_spread={spread_us / 1000:.1f} ms"
    )
    assert busiest <= RATE
    assert steady_rate >= 0.95 * RATE
    if spread_us <= latency_spread_budget_us(LimiterPolicy(RATE)):
        assert busiest_local <= RATE
