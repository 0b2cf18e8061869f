# Sends BYTES bytes from address SRC to DST PORT over TCP, then closes.
import socket, sys
src, dst, port, size = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
s = socket.socket()
s.bind((src, 0))
s.settimeout(30)
s.connect((dst, port))
s.sendall(b"\x07" * size)
s.close()
