#!/usr/bin/env bash
# lint.sh BUILD_DIR - clang-format check, clang-tidy and cppcheck over the project's C code.
# BUILD_DIR must hold compile_commands.json (any configured CMake build dir).
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build-debug}
mapfile -t files < <(git ls-files '*.c' '*.h')
mapfile -t sources < <(git ls-files 'src/*.c' 'tests/*.c' 'bench/*.c' 'sim/*.c')
status=0

echo "== clang-format"
clang-format --dry-run --Werror "${files[@]}" || status=1

echo "== clang-tidy"
# Run two at a time; the machine has two cores.
# clang-tidy exits non-zero on its own errors, so its findings are judged by its output
# (with pipefail, a pipeline ending in grep would take xargs' failure instead).
tidy=$(printf '%s\n' "${sources[@]}" | xargs -P 2 -n 4 clang-tidy -p "$build" --quiet 2>/dev/null || true)
if grep -E 'warning:|error:' <<<"$tidy"; then
  status=1
fi

echo "== cppcheck"
cppcheck --quiet --error-exitcode=1 --inline-suppr --std=c11 \
  --enable=warning,performance,portability \
  --suppress=missingIncludeSystem --suppress=unknownMacro \
  -I src -I tests -D_GNU_SOURCE -DF3_VERSION='"lint"' \
  src tests $( [ -d bench ] && ls bench/*.c >/dev/null 2>&1 && echo bench ) || status=1

if [ $status -eq 0 ]; then echo "lint: clean"; else echo "lint: problems found" >&2; fi
exit $status
