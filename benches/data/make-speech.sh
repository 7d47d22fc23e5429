#!/usr/bin/env bash
# Regenerates speech16k.wav, the speech clip jitterbench plays: a few sentences spoken by
# espeak-ng (Debian package espeak-ng), resampled by sox to 16 kHz, 16-bit mono.
# Needs: apt-get install espeak-ng sox. The output is committed; run this only to change it.
set -euo pipefail
cd "$(dirname "$0")"
TEXT="The relay forwards every packet as soon as it arrives. \
A listener hears the voice of the caller a moment later, and the jitter buffer decides how long that moment is. \
Seven quick zebras jumped over the sleeping dog near the river bank. \
Quality is what the listener hears, not what the graph shows."
tmp=$(mktemp --suffix=.wav)
trap 'rm -f "$tmp"' EXIT
espeak-ng -v en-us -s 175 -g 4 -w "$tmp" "$TEXT"
sox "$tmp" -r 16000 -b 16 -c 1 -e signed-integer speech16k.wav norm -3
soxi speech16k.wav
