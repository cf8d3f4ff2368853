#!/bin/sh
# Test web app: serves /up (200) and /version from /www, exits at once on SIGTERM/SIGINT.
trap 'exit 0' TERM INT
cat /etc/hostname >/www/hostname 2>/dev/null || hostname >/www/hostname
echo "web $(cat /www/version) listening on :${PORT:-80}"
httpd -f -p "${PORT:-80}" -h /www &
wait
