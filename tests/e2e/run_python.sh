#!/bin/sh
# Runs a Python e2e test with an interpreter that can import boto3 (and has awscli):
# `python3` on PATH if it can, else pyenv's 3.11.7. Usage: run_python.sh test_x.py [args]
set -e
for py in python3 /root/.pyenv/versions/3.11.7/bin/python3; do
  if command -v "$py" >/dev/null 2>&1 && "$py" -c 'import boto3' >/dev/null 2>&1; then
    exec "$py" "$@"
  fi
done
echo "run_python.sh: no python3 with boto3 found (tried python3 on PATH and pyenv 3.11.7)" >&2
exit 1
