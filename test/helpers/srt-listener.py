#!/usr/bin/python3
"""An SRT receiver that checks the stream id, as a CDN's ingest does: Debian's libsrt through ctypes.

    srt-listener.py PORT ALLOWED_STREAMID OUTFILE [PASSPHRASE]

A caller whose stream id is not ALLOWED_STREAMID is refused in the handshake with SRT_REJX_FORBIDDEN
(1403, "forbidden"). An accepted caller's payload (MPEG-TS) is appended to OUTFILE until it disconnects;
then the listener waits for the next caller. Neither ffmpeg nor srt-live-transmit can refuse by stream id,
hence this helper (used by test/unit/srt-sink.test.ts).
"""
import ctypes
import socket
import struct
import sys

srt = ctypes.CDLL("libsrt-gnutls.so.1.5")
SRTO_PASSPHRASE = 26
SRT_REJX_FORBIDDEN = 1403

port, allowed, outfile = int(sys.argv[1]), sys.argv[2].encode(), sys.argv[3]
passphrase = sys.argv[4].encode() if len(sys.argv) > 4 else None

CALLBACK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.c_int, ctypes.c_int, ctypes.c_void_p, ctypes.c_char_p)


@CALLBACK
def on_listen(_opaque, ns, _hsversion, _peer, streamid):
    if streamid != allowed:
        srt.srt_setrejectreason(ns, SRT_REJX_FORBIDDEN)
        sys.stderr.write("refused streamid %r\n" % (streamid,))
        sys.stderr.flush()
        return -1
    return 0


srt.srt_startup()
lsn = srt.srt_create_socket()
if passphrase:
    srt.srt_setsockflag(lsn, SRTO_PASSPHRASE, ctypes.c_char_p(passphrase), len(passphrase))
addr = struct.pack("<H", socket.AF_INET) + struct.pack(">H", port) + socket.inet_aton("127.0.0.1") + b"\0" * 8
if srt.srt_bind(lsn, addr, len(addr)) != 0 or srt.srt_listen(lsn, 2) != 0:
    sys.exit("bind/listen failed")
srt.srt_listen_callback(lsn, on_listen, None)
print("listening", flush=True)
buf = ctypes.create_string_buffer(1500)
with open(outfile, "ab", buffering=0) as out:
    while True:
        s = srt.srt_accept(lsn, None, None)
        if s < 0:
            continue
        print("accepted", flush=True)
        while True:
            n = srt.srt_recvmsg(s, buf, 1500)
            if n <= 0:
                break
            out.write(buf.raw[:n])
        srt.srt_close(s)
        print("closed", flush=True)
