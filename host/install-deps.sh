#!/bin/sh
# The host's build tools: gfortran, a C++ compiler and the nlohmann JSON header (the shim
# reads the artifact's contract with it). Missing ones are installed from Debian's packages
# when running as root (as in CI); `--check` only reports. Nothing else is downloaded:
# LibTorch comes from the torch wheel already in the Python environment.
set -eu
missing=""
command -v gfortran >/dev/null 2>&1 || missing="$missing gfortran"
command -v g++ >/dev/null 2>&1 || missing="$missing g++"
[ -f /usr/include/nlohmann/json.hpp ] || missing="$missing nlohmann-json3-dev"
[ -z "$missing" ] && exit 0
if [ "${1:-}" != "--check" ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  apt-get update -qq && apt-get install -y -qq $missing
  exit 0
fi
echo "missing:$missing (install with: apt-get install$missing)" >&2
exit 1
