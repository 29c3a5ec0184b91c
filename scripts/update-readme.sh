#!/usr/bin/env bash
# update-readme.sh [BINARY] - regenerates the configuration reference in README.md
# from the config table (`f3connect config reference`).
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${1:-build/f3connect}
ref=$(env -i PATH="$PATH" "$bin" config reference)
python3 - "$ref" <<'PY'
import sys, re
ref = sys.argv[1]
text = open("README.md").read()
begin = text.index("<!-- BEGIN CONFIG REFERENCE")
begin = text.index("\n", begin) + 1
end = text.index("<!-- END CONFIG REFERENCE -->")
open("README.md", "w").write(text[:begin] + ref.rstrip("\n") + "\n" + text[end:])
PY
