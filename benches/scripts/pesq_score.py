#!/usr/bin/env python3
"""PESQ wideband scores for jitterbench (ITU-T P.862.2 via the `pesq` package from PyPI).

Usage: pesq_score.py [--jobs N] MANIFEST

MANIFEST has one job per line: `ID REF.wav DEG.wav CHUNK_SAMPLES`. REF is the clean decode
(no network) of a stream made of a speech clip repeated end to end; DEG is what a jitter
buffer played out of the same stream after the network emulator; CHUNK_SAMPLES is the
clip's length in REF's samples. Both WAVs are 16-bit mono at any rate that is a multiple of
16 kHz (jitterbench writes 48 kHz): they are low-pass filtered and decimated to 16 kHz.

REF is cut at the clip boundaries. Each piece is found in DEG by correlating 10 ms energy
envelopes around where it is expected (DEG starts after the buffer's initial delay and
drifts as the buffer stretches and shortens audio); DEG is cut from each piece's start to
the next piece's start. Each pair is scored with PESQ in wideband mode ("wb", which applies
the P.862.2 mapping from raw PESQ to MOS-LQO, range 1.04-4.64); PESQ's own time alignment
takes care of the delay changes inside a piece.

Prints one JSON object per job: {"id", "mos" (mean over pieces), "min", "pieces"}.
Exits 3 with a message when numpy or pesq is missing.
"""
import json
import sys
import wave
from multiprocessing import Pool

try:
    import numpy as np
    from pesq import pesq as pesq_score
except ImportError as e:  # the bench turns this into a clear message
    print(f"pesq_score.py: {e}; install with: pip install pesq numpy", file=sys.stderr)
    sys.exit(3)

FS = 16000
FRAME = FS // 100  # 10 ms envelope frames
SEARCH_S = 2.0  # how far from the expected place a piece is looked for, seconds


def read16k(path):
    with wave.open(path, "rb") as w:
        rate, ch, width = w.getframerate(), w.getnchannels(), w.getsampwidth()
        if width != 2 or rate % FS != 0:
            raise ValueError(f"{path}: need 16-bit PCM at a multiple of 16 kHz")
        x = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(np.float64)
    if ch > 1:
        x = x.reshape(-1, ch).mean(axis=1)
    k = rate // FS
    if k > 1:
        # Windowed-sinc low-pass at 0.95 * 8 kHz, then keep every k-th sample.
        n = np.arange(-48 * k, 48 * k + 1)
        fc = 0.95 * 0.5 / k
        h = 2 * fc * np.sinc(2 * fc * n) * np.hamming(len(n))
        x = np.convolve(x, h / h.sum(), mode="same")[::k]
    return x


def envelope(x):
    n = len(x) // FRAME
    e = (x[: n * FRAME].reshape(n, FRAME) ** 2).mean(axis=1)
    return np.log10(e + 1.0)


def find(env_deg, env_piece, expected):
    """Start frame of `env_piece` in `env_deg`, searched within SEARCH_S of `expected`."""
    m = len(env_piece)
    p = env_piece - env_piece.mean()
    pn = np.sqrt((p**2).sum()) + 1e-9
    span = int(SEARCH_S * 100)
    best, best_at = -2.0, max(0, expected)
    for s in range(max(0, expected - span), min(len(env_deg) - m, expected + span) + 1):
        d = env_deg[s : s + m]
        d = d - d.mean()
        c = (p * d).sum() / (pn * (np.sqrt((d**2).sum()) + 1e-9))
        if c > best:
            best, best_at = c, s
    return best_at


def score(job):
    ident, ref_path, deg_path, chunk = job
    ref, deg = read16k(ref_path), read16k(deg_path)
    with wave.open(ref_path, "rb") as w:
        piece = int(chunk) * FS // w.getframerate()
    n = len(ref) // piece
    env_deg = envelope(deg)
    starts, expected = [], 0
    for i in range(n):
        env_piece = envelope(ref[i * piece : (i + 1) * piece])
        s = find(env_deg, env_piece, expected)
        starts.append(s * FRAME)
        expected = s + piece // FRAME
    scores = []
    for i in range(n):
        r = ref[i * piece : (i + 1) * piece]
        end = starts[i + 1] if i + 1 < n else starts[i] + piece
        d = deg[starts[i] : max(end, starts[i] + FRAME)]
        if len(d) < piece // 4:
            continue
        try:
            scores.append(pesq_score(FS, r, d, "wb"))
        except Exception as e:  # e.g. no utterances found: skip the piece, say so
            print(f"pesq_score.py: {ident} piece {i}: {e}", file=sys.stderr)
    out = {"id": ident, "pieces": len(scores)}
    if scores:
        out["mos"] = float(np.mean(scores))
        out["min"] = float(np.min(scores))
    return out


def main():
    args = sys.argv[1:]
    jobs_n = 1
    if len(args) >= 2 and args[0] == "--jobs":
        jobs_n, args = max(1, int(args[1])), args[2:]
    if len(args) != 1:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    with open(args[0]) as f:
        jobs = [line.split() for line in f if line.strip()]
    with Pool(jobs_n) as pool:
        for out in pool.imap(score, jobs):
            print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
