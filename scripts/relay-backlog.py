#!/usr/bin/env python3
"""Measures the relay's memory when a peer stops reading (docs/RELIABILITY.md).

Starts `distmap relay` (default limits), connects a writer and a reader to
one map, makes the reader stop reading, and has the writer send 1 MiB deltas
until the relay cuts the reader off (the writer hears `left`). Prints the
relay's peak RSS. Only 127.0.0.1; ends only the relay it started.

    scripts/relay-backlog.py [path/to/distmap] [--max-backlog BYTES]
"""
import os, re, select, socket, struct, subprocess, sys, time

binary = sys.argv[1] if len(sys.argv) > 1 and not sys.argv[1].startswith('-') else 'build/distmap'
extra = sys.argv[2:] if len(sys.argv) > 2 else []
relay = subprocess.Popen([binary, 'relay', '--port', '0'] + extra, stdout=subprocess.PIPE, text=True)
port = int(re.search(r':(\d+)', relay.stdout.readline()).group(1))

def rss_mb():
    with open(f'/proc/{relay.pid}/status') as f:
        for line in f:
            if line.startswith('VmRSS:'):
                return int(line.split()[1]) / 1024

def frame(opcode, payload):
    n = len(payload)
    head = bytes([0x80 | opcode])
    if n < 126: head += bytes([0x80 | n])
    elif n < 65536: head += bytes([0x80 | 126]) + struct.pack('>H', n)
    else: head += bytes([0x80 | 127]) + struct.pack('>Q', n)
    return head + b'\0\0\0\0' + payload  # zero mask

def connect(rcvbuf=None):
    s = socket.socket()
    if rcvbuf: s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    s.connect(('127.0.0.1', port))
    s.sendall(b'GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n'
              b'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n')
    buf = b''
    while b'\r\n\r\n' not in buf: buf += s.recv(4096)
    return s

def wait_for(s, text, timeout=10):
    s.settimeout(timeout)
    buf = b''
    while text not in buf: buf += s.recv(65536)
    return buf

writer, reader = connect(), connect(rcvbuf=4096)
writer.sendall(frame(1, b'{"type":"hello","version":1,"peer":"00000000000000a1"}') + frame(1, b'{"type":"open","map":"/backlog"}'))
body = wait_for(writer, b'"opened"')
map_id = int(re.search(rb'"id":(\d+)', body).group(1))
reader.sendall(frame(1, b'{"type":"hello","version":1,"peer":"00000000000000b1"}') + frame(1, b'{"type":"open","map":"/backlog"}'))
wait_for(writer, b'"joined"')
# The reader now never calls recv() again.
delta = struct.pack('<BBHIQ', 0x10, 0, 0, map_id, 0) + b'v' * (1 << 20)
base, peak, sent, start = rss_mb(), 0, 0, time.time()
writer.settimeout(30)  # blocking sends: a partial frame would break the stream
left = b''
while b'"left"' not in left and sent < 512:
    writer.sendall(frame(2, delta)); sent += 1
    while select.select([writer], [], [], 0)[0]:
        left += writer.recv(65536)
    peak = max(peak, rss_mb())
    if sent % 8 == 0:
        time.sleep(0.02)  # stay under the default rate limit's burst and let the relay read
cut = b'"left"' in left
for _ in range(30):
    time.sleep(0.1); peak = max(peak, rss_mb())
after = rss_mb()
print(f'relay RSS: {base:.1f} MB before, peak {peak:.1f} MB, {after:.1f} MB after; '
      f'{sent} MiB sent; reader cut off: {cut} ({time.time() - start:.1f} s)')
relay.terminate(); relay.wait(10)
sys.exit(0 if cut else 1)
