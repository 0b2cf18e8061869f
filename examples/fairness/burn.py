# A CPU-bound job of fixed size for the fairness experiment: ITERATIONS additions in a
# Python loop (about 12 s alone on one core of a 2026 cloud VM for 170M). Prints the time
# it took as a p2plab metric.
import sys
import time

start = time.monotonic()
n = 0
for i in range(int(sys.argv[1])):
    n += i
print(f"P2PLAB seconds={time.monotonic() - start:.3f}")
