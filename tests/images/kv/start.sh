#!/bin/sh
# Test accessory: serves /data on :${PORT:-80}; logs its version and mode (never the secrets);
# exits at once on SIGTERM/SIGINT.
trap 'exit 0' TERM INT
echo "kv $(cat /version) started mode=${KV_MODE:-none} conf=$([ -f /etc/kv.conf ] && echo yes || echo no)"
httpd -f -p "${PORT:-80}" -h /data &
wait
