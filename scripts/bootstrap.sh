#!/usr/bin/env bash
# Installs what ClearStem needs: Debian packages (when run as root and missing), a virtualenv,
# and the project with its test extras. Safe to run repeatedly; it skips work already done.
set -euo pipefail
VENV=${1:-.venv}
cd "$(dirname "$0")/.."

# chromium: the browser tests drive Debian's headless Chromium with Playwright (no browser download)
# fluidsynth + the Csound GM bank (public domain) + TimGM6mb + espeak-ng + Sonivox EAS (Apache-2.0) + Flite (CMU)
# + FreePats played by TiMidity++ (GPL-2+ with a composition exception) + three Hydrogen drum kits
# (separation.training.kits: CC0, CC-BY-3.0, GPL-2+ with a composition exception):
# separation.training renders its per-stem training songs with them (tests/test_training_data.py)
DEBS=(libchromaprint1 libchromaprint-tools postgresql redis-server ffmpeg libsndfile1 chromium fonts-liberation
      fluidsynth csound-soundfont timgm6mb-soundfont espeak-ng libsonivox3 flite freepats timidity hydrogen-drumkits)
EXTRAS="test"
if [ "${BENCH:-0}" = 1 ]; then  # benchmarks render multitracks with FluidSynth and score them
  DEBS+=(opl3-soundfont)  # bench/soundfonts.py: never the evaluation's reserved soundfont or one built from it
  EXTRAS="test,bench"
fi
missing=()
for p in "${DEBS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    echo "bootstrap: installing Debian packages: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  else
    echo "bootstrap: missing Debian packages (run as root or install them): ${missing[*]}" >&2
    exit 1
  fi
fi

PYTHON=${PYTHON:-$(command -v python3.11 || command -v python3)}
created=0
if [ ! -x "$VENV/bin/python" ]; then
  echo "bootstrap: creating virtualenv $VENV with $PYTHON"
  "$PYTHON" -m venv "$VENV"
  created=1
fi
stamp="$VENV/.clearstem-installed-${EXTRAS/,/-}"
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  echo "bootstrap: installing Python dependencies (torch comes from the local cache when present)"
  "$VENV/bin/pip" install -q --disable-pip-version-check --upgrade pip 2>&1 | grep -v "is ignored" || true
  "$VENV/bin/pip" install -q --disable-pip-version-check -e ".[$EXTRAS]" 2>&1 | grep -v "is ignored" || true
  if ! "$VENV/bin/python" -c "import django, rest_framework, dramatiq, acoustid, av, torch, torchaudio, rfc8785, demucs.htdemucs, playwright.sync_api, xdist"; then
    # A half-installed torch (a full disk: torch's CUDA build alone is several GB) would pass for
    # installed on the next run, so a virtualenv made by this run goes (one it found stays), and
    # the message says how much room there was.
    free_mb=$(df -Pm "$(dirname "$VENV")" | awk 'NR == 2 {print $4}')
    echo "bootstrap: dependency install failed; $free_mb MB free where $VENV lives (a full install takes about 7 GB)" >&2
    if [ "$created" = 1 ]; then
      rm -rf "$VENV"
      echo "bootstrap: removed the new $VENV; free some space if that was the cause and run the command again" >&2
    fi
    exit 1
  fi
  touch "$stamp"
fi
