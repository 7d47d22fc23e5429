#!/usr/bin/env python3
"""How P.862 (PESQ) scores time-scaled speech with no loss and no concealment at all.

Usage: pesq_time_scale.py REFERENCE.wav CHUNK_SAMPLES

REFERENCE is jitterbench's clean decode (`jitterbench --keep-wav` keeps it; CHUNK_SAMPLES
is the last column of its pesq-manifest.txt). Every variant below only time-scales that
clean decode, the way an adaptive jitter buffer does (one 2.5-10 ms pitch period removed
or repeated with a linear cross-fade, or 10 ms of a silent 20 ms frame), at a given rate,
and is then scored exactly as jitterbench scores the buffers (pesq_score.py, wideband).
No packet is lost or concealed, so every point below 4.64 is what PESQ charges for the
time-scaling alone. See docs/design-notes.md, "Jitter buffer: what PESQ can judge".
"""
import os
import subprocess
import sys
import tempfile
import wave

import numpy as np

F = 960  # 20 ms at 48 kHz
SILENCE_RMS = 60.0


def read(path):
    with wave.open(path, "rb") as w:
        x = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(np.float64)
        rate, ch = w.getframerate(), w.getnchannels()
    if ch > 1:
        x = x.reshape(-1, ch).mean(axis=1)
    return x, rate


def write(path, x, rate):
    with wave.open(path, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(np.clip(np.round(x), -32768, 32767).astype("<i2").tobytes())


def period(f):
    """Best pitch lag in 2.5-10 ms and its normalised correlation."""
    w = F - 480
    a = f[:w]
    best, best_lag = -2.0, 480
    for lag in range(120, 481):
        b = f[lag : lag + w]
        c = np.dot(a, b) / (np.sqrt(np.dot(a, a) * np.dot(b, b)) + 1e-9)
        if c > best:
            best, best_lag = c, lag
    return best_lag, best


def scale(f, lag, remove):
    wgt = (np.arange(lag) + 0.5) / lag
    if remove:
        return np.concatenate([f[:lag] * (1 - wgt) + f[lag : 2 * lag] * wgt, f[2 * lag :]])
    return np.concatenate([f[:lag], f[lag : 2 * lag] * (1 - wgt) + f[:lag] * wgt, f[lag:]])


def variant(x, every_s, where, op, seed=1):
    """`where`: "voiced" (pitch period, correlation >= 0.6) or "silence" (10 ms of a frame
    under SILENCE_RMS); `op`: "remove" or "both" (remove or repeat at random)."""
    rng = np.random.default_rng(seed)
    gap = int(every_s * 50)
    out, last, ops = [], -(10**9), 0
    for k in range(len(x) // F):
        f = x[k * F : (k + 1) * F]
        if k - last >= gap:
            silent = np.sqrt((f**2).mean()) < SILENCE_RMS
            lag, corr = (480, 1.0) if silent else period(f)
            if (where == "silence" and silent) or (where == "voiced" and not silent and corr >= 0.6):
                remove = op == "remove" or rng.random() < 0.5
                out.append(scale(f, lag, remove))
                last, ops = k, ops + 1
                continue
        out.append(f)
    return np.concatenate(out), ops


def main():
    if len(sys.argv) != 3:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    ref, chunk = sys.argv[1], sys.argv[2]
    x, rate = read(ref)
    here = os.path.dirname(os.path.abspath(__file__))
    with tempfile.TemporaryDirectory() as d:
        lines = []
        for every in (2.0, 1.0, 0.5):
            for where in ("voiced", "silence"):
                for op in ("remove", "both"):
                    y, ops = variant(x, every, where, op)
                    name = f"every{every}s-{where}-{op}"
                    path = os.path.join(d, name + ".wav")
                    write(path, y, rate)
                    lines.append(f"{name} {os.path.abspath(ref)} {path} {chunk}")
                    print(f"{name}: {ops / (len(x) / rate):.2f} operations per second", file=sys.stderr)
        manifest = os.path.join(d, "manifest.txt")
        with open(manifest, "w") as m:
            m.write("\n".join(lines) + "\n")
        subprocess.run(
            [sys.executable, os.path.join(here, "pesq_score.py"), "--jobs", "2", manifest],
            check=True,
        )


if __name__ == "__main__":
    main()
