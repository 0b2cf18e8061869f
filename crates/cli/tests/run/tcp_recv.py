# Accepts one TCP connection on port 7000 and reads it for ARGV[1] seconds, then prints, as a
# p2plab metric, the sender's wire rate (bit/s) over 1.5-4.5 s and 5.5-8.5 s after its start,
# which it writes to the file ARGV[2] (a CLOCK_MONOTONIC time) for the sender.
#
# Each sample pairs the bytes received so far with the moment the kernel's receive queue was
# drained: a non-blocking read that emptied the queue (returned less than the buffer), timed
# from just before to just after the call; reads that took over 2 ms (the process was
# preempted) are not samples. A starved receiver reads less often but never measures a
# different rate: the kernel keeps receiving and acknowledging while it waits.
import socket
import sys
import time

FRAME = 1514  # bytes on the wire of a full segment: the topology's mtu 1500 and Ethernet's 14
srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
# A receive buffer of 8 MB (root may exceed rmem_max), seconds of data at these rates: a
# receiver that runs late never closes TCP's window, so it never slows the sender.
SO_RCVBUFFORCE = 33
srv.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, 8 << 20)
srv.bind(("0.0.0.0", 7000))
start = time.monotonic()
with open(sys.argv[2], "w") as f:  # before listening: the sender reads it once connected
    f.write(repr(start))
srv.listen(1)
conn, _ = srv.accept()
mss = conn.getsockopt(socket.IPPROTO_TCP, socket.TCP_MAXSEG)
conn.setblocking(False)
buf = bytearray(1 << 20)
total, samples = 0, []
while time.monotonic() - start < float(sys.argv[1]):
    before = time.monotonic()
    try:
        n = conn.recv_into(buf)
    except BlockingIOError:
        time.sleep(0.005)
        continue
    after = time.monotonic()
    if n == 0:
        break
    total += n
    if n < len(buf) and after - before < 0.002:
        samples.append(((before + after) / 2 - start, total))


def rate(a, b):
    s = [x for x in samples if a <= x[0] < b]
    (t0, b0), (t1, b1) = s[0], s[-1]
    return (b1 - b0) * FRAME / mss * 8 / (t1 - t0)


print(f"P2PLAB before={rate(1.5, 4.5):.0f} after={rate(5.5, 8.5):.0f}", flush=True)
