#!/usr/bin/env python3
"""Writes the committed seed corpora (fuzz/corpus/<target>/seed-*). Run from fuzz/."""
import os, struct

def rtp_sample():
    return bytes([0xb1, 0xe0, 0x12, 0x34, 0xde, 0xad, 0xbe, 0xef, 0, 0, 0, 1,
                  0, 0, 0, 2, 0xbe, 0xde, 0, 2, 0x10, 0xaa, 0x21, 0xbb, 0xcc, 0, 0, 0,
                  ord('a'), ord('b'), ord('c'), 0, 2])

def rtp_two_byte():
    ext = bytes([200, 0, 3, 5]) + b'hello' + bytes(3)
    return bytes([0x90, 0x6f, 0, 1, 0, 0, 3, 0xc0, 0x12, 0x34, 0x56, 0x78,
                  0x10, 0x00, 0, len(ext) // 4]) + ext + b'\xfc\xff\xfe'

def rtp_min():
    return bytes([0x80, 0x00, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0])

def rtcp(count, pt, body, pad=0):
    b0 = 0x80 | count | (0x20 if pad else 0)
    if pad:
        body = body + bytes(pad - 1) + bytes([pad])
    return bytes([b0, pt]) + struct.pack('>H', len(body) // 4) + body

def report_block(ssrc):
    return struct.pack('>IIIIII', ssrc, 0x03fffffc, 70000, 5, 6, 7)

def sr():
    return rtcp(1, 200, struct.pack('>IIIIII', 1, 0x01020304, 0x05060708, 9, 10, 11) + report_block(2))

def rr():
    return rtcp(2, 201, struct.pack('>I', 3) + report_block(4) + report_block(5))

def sdes():
    chunk = struct.pack('>I', 1) + bytes([1, 5]) + b'cname' + bytes([2, 2]) + b'ab'
    chunk += bytes(4 - len(chunk) % 4)
    return rtcp(1, 202, chunk)

def nack():
    return rtcp(1, 205, struct.pack('>IIHHHH', 1, 2, 100, 0x8001, 65535, 3))

def pli():
    return rtcp(1, 206, struct.pack('>II', 1, 2))

def fir():
    return rtcp(4, 206, struct.pack('>IIIB3x', 1, 0, 2, 7))

def remb():
    return rtcp(15, 206, struct.pack('>II', 1, 0) + b'REMB' + bytes([2, 0x07, 0xa1, 0x20]) + struct.pack('>II', 5, 6))

def twcc():
    body = struct.pack('>IIHH', 1, 2, 100, 4) + bytes([0xff, 0xff, 0xfe, 7])
    body += bytes([0x20, 0x02, 0xe0, 0x00, 10, 20, 0xff, 0xf0])
    return rtcp(15, 205, body)

def bye():
    reason = b'bye'
    return rtcp(1, 203, struct.pack('>I', 9) + bytes([len(reason)]) + reason)

def app():
    return rtcp(3, 204, struct.pack('>I', 9) + b'TEST' + b'data')

def unknown():
    return rtcp(2, 210, b'\x01\x02\x03\x04')

def padded_rr():
    return rtcp(0, 201, struct.pack('>I', 3), pad=4)

TID = bytes.fromhex('b7e7a701bc34d686fa87dfae')
# The RFC 5769 vectors, verbatim.
STUN_REQ = bytes.fromhex(
    '000100582112a442b7e7a701bc34d686fa87dfae'
    '802200105354554e20746573742063'
    '6c69656e74'
    '002400046e0001ff'
    '80290008932ff9b151263b36'
    '000600096576746a3a68367659202020'
    '000800149aeaa70cbfd8cb56781ef2b5b2d3f249c1b571a2'
    '80280004e57a3bcf')
STUN_V4 = bytes.fromhex(
    '0101003c2112a442b7e7a701bc34d686fa87dfae'
    '8022000b7465737420766563746f7220'
    '002000080001a147e112a643'
    '000800142b91f599fd9e90c38c7489f92af9ba53f06be7d7'
    '80280004c07d4c96')
STUN_V6 = bytes.fromhex(
    '010100482112a442b7e7a701bc34d686fa87dfae'
    '8022000b7465737420766563746f7220'
    '002000140002a1470113a9faa5d3f179bc25f4b5bed2b9d9'
    '00080014a382954e4be67bf11784c97c8292c275bfe3ed41'
    '80280004c8fb0b4c')

def error_response():
    reason = b'Unauthorized'
    val = bytes([0, 0, 4, 1]) + reason
    attr = struct.pack('>HH', 0x0009, len(val)) + val + bytes((4 - len(val) % 4) % 4)
    return struct.pack('>HHI', 0x0111, len(attr), 0x2112a442) + TID + attr

assert len(STUN_REQ) == 108 and len(STUN_V4) == 80 and len(STUN_V6) == 92

rtps = [rtp_sample(), rtp_two_byte(), rtp_min()]
rtcps = [sr() + sdes(), sr() + rr() + sdes(), rr() + nack() + pli() + fir() + remb(),
         rr() + twcc(), rr() + bye() + app() + unknown(), padded_rr()]
stuns = [STUN_REQ, STUN_V4, STUN_V6, error_response()]
corpora = {
    'rtp': rtps,
    'rtcp': rtcps,
    'stun': stuns,
    'demux': [rtps[0], rtcps[0], STUN_REQ, bytes([0x16, 0xfe, 0xfd, 0, 0]), bytes([0x40, 0, 0, 4])],
    'roundtrip': [bytes([0]) + r for r in rtps] + [bytes([1]) + r for r in rtcps]
                 + [bytes([2]) + s for s in stuns],
}
for target, seeds in corpora.items():
    d = os.path.join('corpus', target)
    os.makedirs(d, exist_ok=True)
    for i, s in enumerate(seeds):
        with open(os.path.join(d, f'seed-{i:02}'), 'wb') as f:
            f.write(s)
print({t: len(s) for t, s in corpora.items()})

# sdp_answer: the browser offers the signaling tests use, behind the target's policy byte
# (0x04: transport-cc; 0x15: transport-cc, simulcast, a public IP).
sdp_dir = os.path.join('..', 'signaling', 'tests', 'fixtures', 'sdp')
d = os.path.join('corpus', 'sdp_answer')
os.makedirs(d, exist_ok=True)
for name in sorted(n for n in os.listdir(sdp_dir) if n.endswith('.sdp')):
    with open(os.path.join(sdp_dir, name), 'rb') as f:
        offer = f.read()
    for flags in (0x04, 0x15):
        with open(os.path.join(d, f'seed-{name[:-4]}-{flags:02x}'), 'wb') as f:
            f.write(bytes([flags]) + offer)
print({'sdp_answer': len(os.listdir(d))})
