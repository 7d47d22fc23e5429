#!/usr/bin/env bash
# Installs, without root, what the build needs and a fresh machine lacks, into ./.tools.
# Idempotent and quiet when everything is already there; says what it did otherwise.
set -euo pipefail
cd "$(dirname "$0")/.."
TOOLS="$PWD/.tools"

# cmake: the bundled libopus (opus -> opusic-sys) builds with cmake.
if ! PATH="$TOOLS/venv/bin:$PATH" command -v cmake >/dev/null 2>&1; then
  echo "ensure-tools: cmake not found; installing it from PyPI into .tools/venv (no root needed)"
  python3 -m venv "$TOOLS/venv"
  "$TOOLS/venv/bin/pip" install --quiet --disable-pip-version-check cmake
  echo "ensure-tools: installed $("$TOOLS/venv/bin/cmake" --version | head -1)"
fi

# nasm: optional; openh264 is about 3x faster with its assembly. Without it the build
# carries on with the C paths. We only say so: installing it needs root (apt-get install nasm).
if ! command -v nasm >/dev/null 2>&1 && [ ! -e "$TOOLS/.nasm-notice" ]; then
  mkdir -p "$TOOLS"
  echo "ensure-tools: nasm not found; openh264 builds without assembly (slower). 'apt-get install nasm' speeds it up."
  touch "$TOOLS/.nasm-notice"
fi
