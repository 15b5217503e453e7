#!/bin/sh
# Make sure `promtool` (Prometheus's rule checker) is available for tests/deploy.
#
#   deploy/tools/ensure-promtool.sh [BIN_DIR]      (default BIN_DIR: .venv/bin)
#
# Nothing to do when promtool is on PATH or already in BIN_DIR. Otherwise, on Debian/Ubuntu,
# download Debian's `prometheus` package and copy only its promtool into BIN_DIR: no Prometheus
# server is installed or started, and no root is needed when the apt lists exist (as root, the
# lists are refreshed first if the download fails).
set -eu

bin_dir=${1:-.venv/bin}

if command -v promtool >/dev/null 2>&1; then
    exit 0
fi
if [ -x "$bin_dir/promtool" ]; then
    exit 0
fi
if ! command -v apt-get >/dev/null 2>&1 || ! command -v dpkg-deb >/dev/null 2>&1; then
    echo "ensure-promtool: no apt-get here; install promtool (Prometheus 2.x) and put it on PATH" >&2
    exit 1
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT INT TERM

download() {
    (cd "$work" && apt-get download prometheus >/dev/null 2>&1)
}

if ! download; then
    if [ "$(id -u)" -eq 0 ]; then
        apt-get update -qq >/dev/null
        download || { echo "ensure-promtool: apt-get download prometheus failed" >&2; exit 1; }
    else
        echo "ensure-promtool: apt-get download prometheus failed; run as root once" \
            "(apt-get update) or install the prometheus package" >&2
        exit 1
    fi
fi

dpkg-deb -x "$work"/prometheus_*.deb "$work/root"
mkdir -p "$bin_dir"
cp "$work/root/usr/bin/promtool" "$bin_dir/promtool"
chmod 0755 "$bin_dir/promtool"
echo "ensure-promtool: installed $("$bin_dir/promtool" --version 2>&1 | head -n 1) in $bin_dir"
