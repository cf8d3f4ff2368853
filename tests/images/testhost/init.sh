#!/bin/sh
# Entry point of a sandbox SSH host (a container started by scripts/sandbox with --init, so tini
# is PID 1 and reaps orphans). It makes the cgroup hierarchy writable for the inner dockerd,
# gives this host its own SSH host keys, installs the test client key for root and deploy,
# starts sshd and dockerd, then stays in the foreground (the container lives as long as we do).
set -u

REGISTRY="${DHOW_SANDBOX_REGISTRY:-172.17.0.1:5000}"

if [ -d /sys/fs/cgroup/cpu ] || [ -d /sys/fs/cgroup/memory ]; then
  # cgroup v1: the per-controller mounts are read-only inside a container; remount them.
  for d in cpu cpuacct cpuset memory devices freezer blkio pids; do
    umount /sys/fs/cgroup/$d 2>/dev/null
    mkdir -p /sys/fs/cgroup/$d
    mount -t cgroup -o $d cgroup /sys/fs/cgroup/$d
  done
  umount /sys/fs/cgroup/systemd 2>/dev/null
  mkdir -p /sys/fs/cgroup/systemd
  mount -t cgroup -o none,name=systemd cgroup /sys/fs/cgroup/systemd
elif [ -f /sys/fs/cgroup/cgroup.controllers ]; then
  # cgroup v2: move ourselves out of the root group and delegate every controller.
  mount -o remount,rw /sys/fs/cgroup 2>/dev/null
  mkdir -p /sys/fs/cgroup/init
  xargs -rn1 </sys/fs/cgroup/cgroup.procs >/sys/fs/cgroup/init/cgroup.procs 2>/dev/null
  sed -e 's/ / +/g' -e 's/^/+/' </sys/fs/cgroup/cgroup.controllers \
    >/sys/fs/cgroup/cgroup.subtree_control 2>/dev/null
fi

# This host's own host keys (the image ships none, so no two hosts share one). No RSA key:
# generating one costs about a CPU second, times the number of hosts starting at once.
for t in ed25519 ecdsa; do
  [ -s /etc/ssh/ssh_host_${t}_key ] || ssh-keygen -q -t $t -N '' -f /etc/ssh/ssh_host_${t}_key
done

for h in /root /home/deploy; do
  u=$(basename "$h")
  mkdir -p "$h/.ssh"
  cp /sandbox/authorized_keys "$h/.ssh/authorized_keys"
  chmod 700 "$h/.ssh"
  chmod 600 "$h/.ssh/authorized_keys"
  chown -R "$u:$u" "$h/.ssh"
done

mkdir -p /run/sshd
/usr/sbin/sshd -E /var/log/sshd.log

# overlay2 cannot stack on an overlay root; the sandbox mounts a volume at /var/lib/docker so
# overlay2 works, and vfs is the fallback when that volume is missing.
driver=overlay2
if [ "$(stat -f -c %T /var/lib/docker 2>/dev/null || echo overlayfs)" = overlayfs ]; then
  driver=vfs
fi
mkdir -p /var/lib/docker
dockerd --storage-driver "$driver" --insecure-registry "$REGISTRY" >/var/log/dockerd.log 2>&1 &

exec sleep infinity
