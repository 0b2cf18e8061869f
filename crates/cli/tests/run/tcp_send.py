# Sends to ARGV[1]:7000 over TCP as fast as the connection takes it for ARGV[2] seconds, then
# prints, as a p2plab metric, the fewest bytes its socket held unacknowledged (unsent, or
# sent and waiting in the upload queue) during the receiver's measurement windows (1.5-4.5 s
# and 5.5-8.5 s after the receiver's start, read from the file ARGV[3]). That figure only
# shrinks between writes, so the one read just before a write holds since the previous
# write returned, however late the sender ran. The receiver's buffer keeps TCP's window
# open and the send buffer keeps the queue from overflowing (no loss ever shrinks the
# congestion window), so unacknowledged bytes are either on their way (on a link without
# latency, the receiver's delayed ACK's worth: 40 ms, 20 KB at 4 mbit) or waiting for the
# link: well above that, the link was saturated.
import fcntl
import socket
import struct
import sys
import time

SIOCOUTQ = 0x5411  # bytes written but not yet acknowledged
WINDOWS = [(1.5, 4.5), (5.5, 8.5)]

for attempt in range(50):  # the receiver may still be starting
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    # A send buffer (the kernel doubles it to 416 KiB, with overhead) smaller than the
    # 1000 packets of the upload queue: TCP never overflows the queue, so nothing is lost
    # and everything arrives in order, yet it holds about a second of data at 4 mbit.
    s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 212992)
    try:
        s.connect((sys.argv[1], 7000))
        break
    except ConnectionRefusedError:
        s.close()
        time.sleep(0.1)
with open(sys.argv[3]) as f:
    start = float(f.read())
end = time.monotonic() + float(sys.argv[2])
chunk, fewest, since = bytes(65536), None, time.monotonic() - start
while time.monotonic() < end:
    now = time.monotonic() - start
    if any(since < b and now >= a for a, b in WINDOWS):
        held = struct.unpack("i", fcntl.ioctl(s, SIOCOUTQ, struct.pack("i", 0)))[0]
        fewest = held if fewest is None else min(fewest, held)
    try:
        s.sendall(chunk)
    except OSError:
        break
    since = time.monotonic() - start
print(f"P2PLAB unacknowledged={fewest}", flush=True)
