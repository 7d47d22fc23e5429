#!/usr/bin/env python3
"""Prints the SRTP bench (benches/benches/srtp.rs) as a table: median ns per packet of
rtc-srtp (before) and supernode-media (after), and after/before, from target/criterion."""
import json
import pathlib
import sys

root = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else "target/criterion") / "srtp"


def median(op, profile, size, impl):
    f = root / op / profile / size / impl / "new" / "estimates.json"
    return json.loads(f.read_text())["median"]["point_estimate"]


print(f"| op | profile | payload | rtc-srtp ns | media ns | media/rtc-srtp |")
print("|---|---|---|---:|---:|---:|")
for op in ["protect", "unprotect"]:
    for profile in ["aes_cm_hmac_sha1_80", "aead_aes_128_gcm"]:
        for size in ["200B", "1200B"]:
            try:
                before = median(op, profile, size, "rtc-srtp")
                after = median(op, profile, size, "media")
            except FileNotFoundError:
                continue
            print(f"| {op} | {profile} | {size} | {before:.0f} | {after:.0f} | {after / before:.2f} |")
