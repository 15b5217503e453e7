#!/bin/sh
# Make sure `promtool` (Prometheus rule checker) and `amtool` (Alertmanager config checker) are
# available for tests/deploy.
#
#   deploy/tools/ensure-prometheus-tools.sh [BIN_DIR]      (default BIN_DIR: .venv/bin)
#
# A tool already on PATH or in BIN_DIR is left alone. Otherwise, on Debian/Ubuntu, download the
# Debian package that carries it (prometheus, prometheus-alertmanager) and copy only that binary
# into BIN_DIR: no server is installed or started, and no root is needed when the apt lists exist
# (as root, the lists are refreshed first if a download fails).
set -eu

bin_dir=${1:-.venv/bin}

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT INT TERM

download() { # package
    (cd "$work" && apt-get download "$1" >/dev/null 2>&1)
}

ensure() { # tool package
    tool=$1
    package=$2
    if command -v "$tool" >/dev/null 2>&1 || [ -x "$bin_dir/$tool" ]; then
        return 0
    fi
    if ! command -v apt-get >/dev/null 2>&1 || ! command -v dpkg-deb >/dev/null 2>&1; then
        echo "ensure-prometheus-tools: no apt-get here; install $tool and put it on PATH" >&2
        exit 1
    fi
    if ! download "$package"; then
        if [ "$(id -u)" -eq 0 ]; then
            apt-get update -qq >/dev/null
            download "$package" || {
                echo "ensure-prometheus-tools: apt-get download $package failed" >&2
                exit 1
            }
        else
            echo "ensure-prometheus-tools: apt-get download $package failed; run as root once" \
                "(apt-get update) or install $package" >&2
            exit 1
        fi
    fi
    rm -rf "$work/root"
    dpkg-deb -x "$work/${package}"_*.deb "$work/root"
    mkdir -p "$bin_dir"
    cp "$work/root/usr/bin/$tool" "$bin_dir/$tool"
    chmod 0755 "$bin_dir/$tool"
    echo "ensure-prometheus-tools: installed $("$bin_dir/$tool" --version 2>&1 | head -n 1) in $bin_dir"
}

ensure promtool prometheus
ensure amtool prometheus-alertmanager
