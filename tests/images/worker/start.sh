#!/bin/sh
# Test worker: logs a line every ${TICK:-60} seconds, exits at once on SIGTERM/SIGINT.
trap 'exit 0' TERM INT
echo "worker $(cat /version) started"
n=0
while :; do
  sleep "${TICK:-60}" &
  wait $!
  n=$((n + 1))
  echo "worker $(cat /version) tick $n"
done
