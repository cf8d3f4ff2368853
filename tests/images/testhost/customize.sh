#!/bin/sh
# Runs inside the freshly debootstrapped root (chroot) of the sandbox host image.
set -eu

# Host keys are generated per container by init.sh; none may be baked into the image.
rm -f /etc/ssh/ssh_host_*

# A non-root deploy user that may use docker.
id deploy >/dev/null 2>&1 || useradd -m -s /bin/bash -G docker deploy

mkdir -p /etc/ssh/sshd_config.d
cat >/etc/ssh/sshd_config.d/dhow-sandbox.conf <<'EOF'
# Test hosts: key authentication only, many multiplexed channels and parallel connection starts.
HostKey /etc/ssh/ssh_host_ed25519_key
HostKey /etc/ssh/ssh_host_ecdsa_key
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
UseDNS no
MaxSessions 100
MaxStartups 100:30:200
AllowTcpForwarding yes
EOF

# Keep the image small.
apt-get clean
rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin /usr/share/doc/* /usr/share/man/* /usr/share/locale/*
