#!/usr/bin/env bash
# install-deps.sh GROUP... - installs the Debian packages f3connect needs, only those missing.
# Groups: build (compile and run), test (the suite), lint (make lint).
# Quiet when everything is present; uses sudo when not run as root.
set -euo pipefail

build_pkgs=(gcc make cmake pkg-config libmicrohttpd-dev libjansson-dev libcurl4-openssl-dev
            libsqlite3-dev libpq-dev libsodium-dev libssl-dev)
test_pkgs=(libcmocka-dev postgresql curl procps)
lint_pkgs=(clang-format clang-tidy cppcheck)

want=()
for group in "${@:-build}"; do
  case "$group" in
    build) want+=("${build_pkgs[@]}") ;;
    test)  want+=("${build_pkgs[@]}" "${test_pkgs[@]}") ;;
    lint)  want+=("${build_pkgs[@]}" "${lint_pkgs[@]}") ;;
    *) echo "install-deps.sh: unknown group '$group' (build, test, lint)" >&2; exit 2 ;;
  esac
done

missing=()
for pkg in "${want[@]}"; do
  status=$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)
  [[ "$status" == "install ok installed" ]] || missing+=("$pkg")
done
[[ ${#missing[@]} -eq 0 ]] && exit 0

sudo=""
[[ $(id -u) -eq 0 ]] || sudo="sudo"
echo "Installing missing Debian packages: ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq >/dev/null
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
