#!/usr/bin/env bash
# Smoke test of the sandbox built by `scripts/sandbox up`: every host answers SSH as root and as
# deploy (host keys verified against the sandbox known_hosts, on 127.0.0.1:<port> and on the
# container IP), its inner dockerd pulls a test image from the authenticated registry at
# 172.17.0.1:5000 only after logging in, the web image answers /up and /version through the
# host's published port, and the web and worker images exit 0 (not killed) on `docker stop`.
#
#   scripts/sandbox up && tests/sandbox_smoke.sh
set -euo pipefail

REPO="$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/.." && pwd)"
STATE="${DHOW_SANDBOX_DIR:-$REPO/.sandbox}"
[[ -s "$STATE/sandbox.env" ]] || {
  echo "sandbox_smoke: no $STATE/sandbox.env; run scripts/sandbox up first" >&2
  exit 2
}
# shellcheck disable=SC1091
source "$STATE/sandbox.env"

pass=0
fail=0
ok() {
  pass=$((pass + 1))
  echo "ok   $*"
}
bad() {
  fail=$((fail + 1))
  echo "FAIL $*"
}
expect() { # ACTUAL EXPECTED OK-MESSAGE FAIL-MESSAGE
  if [[ "$1" == "$2" ]]; then ok "$3"; else bad "$4"; fi
}

SSH_OPTS=(-F /dev/null -i "$DHOW_SANDBOX_KEY" -o BatchMode=yes -o IdentitiesOnly=yes
  -o StrictHostKeyChecking=yes -o UserKnownHostsFile="$DHOW_SANDBOX_KNOWN_HOSTS"
  -o GlobalKnownHostsFile=/dev/null -o ConnectTimeout=5 -o LogLevel=ERROR)

on() { # INDEX USER CMD  (via the loopback port)
  local port_var="DHOW_SANDBOX_HOST${1}_SSH_PORT"
  ssh "${SSH_OPTS[@]}" -p "${!port_var}" "$2@127.0.0.1" "$3"
}

suffix="$$"
web_name="dhow-smoke-web"
worker_name="dhow-smoke-worker"
web_ref=""
worker_ref=""

cleanup() {
  local i
  for ((i = 1; i <= DHOW_SANDBOX_HOST_COUNT; i++)); do
    on "$i" deploy "docker rm -f smoke-web-$suffix smoke-worker-$suffix >/dev/null 2>&1;
      docker rmi -f $web_ref $worker_ref >/dev/null 2>&1; docker logout $DHOW_SANDBOX_REGISTRY >/dev/null 2>&1; true" \
      </dev/null >/dev/null 2>&1 || true
  done
  local refs=()
  [[ -n "$web_ref" ]] && refs+=("$web_ref")
  [[ -n "$worker_ref" ]] && refs+=("$worker_ref")
  ((${#refs[@]} == 0)) || docker rmi "${refs[@]}" >/dev/null 2>&1 || true
}
trap cleanup EXIT

# 1. SSH as root and deploy on every host, by loopback port and by container IP; docker answers.
for ((i = 1; i <= DHOW_SANDBOX_HOST_COUNT; i++)); do
  ip_var="DHOW_SANDBOX_HOST${i}_IP"
  for user in root deploy; do
    if v=$(on "$i" "$user" "docker info --format '{{.ServerVersion}} {{.Driver}}'" </dev/null 2>&1); then
      ok "host$i: ssh $user@127.0.0.1 docker info -> $v"
    else
      bad "host$i: ssh $user@127.0.0.1 docker info: $v"
    fi
    if v=$(ssh "${SSH_OPTS[@]}" -p 22 "$user@${!ip_var}" "id -un" </dev/null 2>&1) && [[ "$v" == "$user" ]]; then
      ok "host$i: ssh $user@${!ip_var}:22 (known_hosts IP entry) -> $v"
    else
      bad "host$i: ssh $user@${!ip_var}:22: $v"
    fi
  done
done

# 2. A wrong host key is refused (the known_hosts file is really used).
tmp=$(mktemp -d)
ssh-keygen -q -t ed25519 -N '' -f "$tmp/other" </dev/null
# A known_hosts that names host1's port with some other ed25519 key.
printf '[127.0.0.1]:%s %s\n' "$DHOW_SANDBOX_HOST1_SSH_PORT" "$(cut -d' ' -f1,2 "$tmp/other.pub")" >"$tmp/known_hosts"
# (ssh keeps the first value of an option, so the override goes before SSH_OPTS)
if v=$(ssh -o UserKnownHostsFile="$tmp/known_hosts" -o HostKeyAlgorithms=ssh-ed25519 "${SSH_OPTS[@]}" \
  -p "$DHOW_SANDBOX_HOST1_SSH_PORT" root@127.0.0.1 true </dev/null 2>&1); then
  bad "host1: ssh with a wrong known_hosts entry was accepted"
else
  if grep -q 'HOST IDENTIFICATION HAS CHANGED\|Host key verification failed' <<<"$v"; then
    ok "host1: ssh with a wrong known_hosts entry is refused"
  else
    bad "host1: ssh with a wrong known_hosts entry failed for another reason: $v"
  fi
fi
rm -rf "$tmp"

# 3. The generated ssh_config, a jump through host1 to the last host's IP, and the hashed
#    known_hosts copy all work with strict host key checking.
last="$DHOW_SANDBOX_HOST_COUNT"
last_ip_var="DHOW_SANDBOX_HOST${last}_IP"
if v=$(ssh -F "$DHOW_SANDBOX_SSH_CONFIG" -J host1 "deploy@${!last_ip_var}" hostname </dev/null 2>&1) && [[ "$v" == "host$last" ]]; then
  ok "jump host: host1 -> deploy@${!last_ip_var} answers $v"
else
  bad "jump host: host1 -> deploy@${!last_ip_var}: $v"
fi
if v=$(ssh -o UserKnownHostsFile="$DHOW_SANDBOX_KNOWN_HOSTS_HASHED" -F "$DHOW_SANDBOX_SSH_CONFIG" host1 hostname </dev/null 2>&1) &&
  [[ "$v" == host1 ]] && ! grep -q 127.0.0.1 "$DHOW_SANDBOX_KNOWN_HOSTS_HASHED"; then
  ok "hashed known_hosts: host1 verified ($v)"
else
  bad "hashed known_hosts: $v"
fi

# 4. Build and push the test images.
web_ref=$("$REPO/scripts/sandbox" image "$web_name" "v1-smoke" --kind web --push)
worker_ref=$("$REPO/scripts/sandbox" image "$worker_name" "v1-smoke" --kind worker --push)
ok "built and pushed $web_ref and $worker_ref"
label=$(docker image inspect --format '{{index .Config.Labels "service"}}' "$web_ref")
expect "$label" "$web_name" "$web_ref has label service=$label" "$web_ref label service='$label'"

# 5. The registry refuses anonymous pulls, and accepts them after `docker login` on the host.
if v=$(on 1 deploy "docker pull $web_ref" </dev/null 2>&1); then
  bad "host1: anonymous pull of $web_ref succeeded"
else
  ok "host1: anonymous pull refused ($(tail -n1 <<<"$v"))"
fi
for ((i = 1; i <= DHOW_SANDBOX_HOST_COUNT; i++)); do
  if v=$(on "$i" deploy "docker login -u $DHOW_SANDBOX_REGISTRY_USER --password-stdin $DHOW_SANDBOX_REGISTRY >/dev/null 2>&1 &&
         docker pull -q $web_ref && docker pull -q $worker_ref" <<<"$DHOW_SANDBOX_REGISTRY_PASSWORD" 2>&1); then
    ok "host$i: login and pull from $DHOW_SANDBOX_REGISTRY"
  else
    bad "host$i: login and pull: $v"
  fi
done

# 6. The web image answers through host1's published port 80; the worker runs on the last host.
# A proxy left on host1 by `scripts/demo` holds port 80: the smoke test needs it for a moment.
on 1 deploy "docker rm -f kamal-proxy >/dev/null 2>&1; docker run -d --name smoke-web-$suffix -p 80:80 $web_ref" </dev/null >/dev/null
up_code=000
for _ in $(seq 1 50); do
  up_code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "http://127.0.0.1:$DHOW_SANDBOX_HOST1_HTTP_PORT/up" || true)
  [[ "$up_code" == 200 ]] && break
  sleep 0.2
done
expect "$up_code" 200 "GET 127.0.0.1:$DHOW_SANDBOX_HOST1_HTTP_PORT/up -> 200" "GET /up -> $up_code"
version=$(curl -s --max-time 2 "http://127.0.0.1:$DHOW_SANDBOX_HOST1_HTTP_PORT/version" || true)
expect "$version" "v1-smoke" "GET /version -> $version" "GET /version -> '$version'"

on "$last" deploy "docker run -d --name smoke-worker-$suffix $worker_ref" </dev/null >/dev/null
sleep 0.5

# 7. Both exit 0 on SIGTERM (a container that ignores SIGTERM is killed and exits 137).
code=$(on 1 deploy "docker stop -t 20 smoke-web-$suffix >/dev/null && docker inspect --format '{{.State.ExitCode}}' smoke-web-$suffix" </dev/null)
expect "$code" 0 "web container exits 0 on SIGTERM" "web container exit code $code on docker stop"
code=$(on "$last" deploy "docker stop -t 20 smoke-worker-$suffix >/dev/null && docker inspect --format '{{.State.ExitCode}}' smoke-worker-$suffix" </dev/null)
expect "$code" 0 "worker container exits 0 on SIGTERM" "worker container exit code $code on docker stop"

echo "sandbox_smoke: $pass passed, $fail failed"
((fail == 0))
