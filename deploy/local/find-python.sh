#!/usr/bin/env bash
# Print the path of a Python 3.12 interpreter (pandas-ta 0.4 needs >= 3.12; the lock is for 3.12).
set -u
# 3.12 is what the lock file and the production image (python:3.12-slim) are built for.
ok() { "$1" -c 'import sys; sys.exit(0 if sys.version_info[:2] == (3, 12) else 1)' 2>/dev/null; }
for candidate in "${PYTHON:-}" python3.12 python3; do
  [ -n "$candidate" ] || continue
  path=$(command -v "$candidate" 2>/dev/null) || continue
  if ok "$path"; then echo "$path"; exit 0; fi
done
if command -v pyenv >/dev/null 2>&1; then
  for version in $(pyenv versions --bare 2>/dev/null | grep -E '^3\.12(\.[0-9]+)?$' | sort -V -r); do
    path="$(pyenv prefix "$version")/bin/python3"
    if ok "$path"; then echo "$path"; exit 0; fi
  done
fi
for path in /usr/local/bin/python3.12 /usr/bin/python3.12 "$HOME/.local/bin/python3.12"; do
  if [ -x "$path" ] && ok "$path"; then echo "$path"; exit 0; fi
done
echo "error: Python 3.12 not found. Install it (python:3.12 image, 'uv python install 3.12'," \
     "pyenv, or your distribution) or set PYTHON=/path/to/python3.12." >&2
exit 1
