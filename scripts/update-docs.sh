#!/usr/bin/env bash
# update-docs.sh [BINARY] - regenerates the event catalog docs from src/bus/catalog.c:
# docs/events.md (markdown) and docs/asyncapi.json (AsyncAPI 3.0.0).
# BINARY defaults to build/f3connect; build it first (cmake --build build).
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${1:-build/f3connect}
if [[ ! -x "$bin" ]]; then
  echo "update-docs.sh: no f3connect binary at '$bin'; build it or pass its path" >&2
  exit 1
fi
mkdir -p docs
env -i PATH="$PATH" "$bin" events catalog --format markdown --output docs/events.md
env -i PATH="$PATH" "$bin" events catalog --format asyncapi --output docs/asyncapi.json
echo "updated docs/events.md and docs/asyncapi.json"
