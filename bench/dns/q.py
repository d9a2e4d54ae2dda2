#!/usr/bin/env python3
"""q.py PORT NAME: one A query to 127.0.0.1:PORT over UDP; prints the rcode name (or TIMEOUT)."""
import random
import socket
import struct
import sys

port, name = int(sys.argv[1]), sys.argv[2]
qid = random.randrange(65536)
q = struct.pack(">HHHHHH", qid, 0x0100, 1, 0, 0, 0)
for label in name.rstrip(".").split("."):
    q += bytes([len(label)]) + label.encode()
q += b"\0" + struct.pack(">HH", 1, 1)
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(1)
s.sendto(q, ("127.0.0.1", port))
try:
    data, _ = s.recvfrom(4096)
except socket.timeout:
    print("TIMEOUT")
    sys.exit(1)
rcode = struct.unpack(">H", data[2:4])[0] & 15
ancount = struct.unpack(">H", data[6:8])[0]
print({0: "NOERROR", 2: "SERVFAIL", 3: "NXDOMAIN", 5: "REFUSED"}.get(rcode, str(rcode)), ancount)
