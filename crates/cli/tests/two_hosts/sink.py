# Accepts one TCP connection on ADDR PORT, reads until EOF, prints the bits/s between the
# first and the last byte.
import socket, sys, time
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[1], int(sys.argv[2])))
s.listen(1)
s.settimeout(30)
c, _ = s.accept()
c.settimeout(30)
n, first = 0, None
while True:
    d = c.recv(65536)
    if not d:
        break
    if first is None:
        first = time.monotonic()
    n += len(d)
print(n * 8 / (time.monotonic() - first))
