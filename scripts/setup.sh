#!/usr/bin/env bash
# Installs what the harness needs on a fresh Debian 12 machine (run as root, or with sudo available):
# Debian's QEMU, U-Boot, PostgreSQL and Chromium, then this package with its test extras.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(
  qemu-system-x86 qemu-system-arm qemu-utils u-boot-qemu
  cpio xz-utils zstd e2fsprogs dosfstools mtools busybox-static binutils
  postgresql chromium chromium-driver iproute2 socat dropbear-bin openssh-sftp-server
  curl openssl util-linux openssh-client
)

SUDO=""
[ "$(id -u)" = 0 ] || SUDO="sudo"

missing=()
for pkg in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "ok installed" || missing+=("$pkg")
done
need_update=0
if ! dpkg --print-foreign-architectures | grep -qx arm64; then
  # arm64 package lists let `harness lab build` download the aarch64 kernel, busybox and dropbear.
  $SUDO dpkg --add-architecture arm64
  need_update=1
fi
if [ ${#missing[@]} -gt 0 ] || [ $need_update = 1 ] || ! ls /var/lib/apt/lists/*arm64_Packages* >/dev/null 2>&1; then
  echo "setup: apt-get update"
  $SUDO apt-get update -q >/dev/null
fi
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
fi

PY=${PYTHON:-python3}
if ! $PY -c "import harness, pytest_timeout" >/dev/null 2>&1 || [ pyproject.toml -nt .setup-stamp ] 2>/dev/null; then
  echo "setup: pip install -e .[test]"
  $PY -m pip install -q --disable-pip-version-check -e ".[test]" 2>&1 | grep -v -i "running pip as the 'root' user" || true
  touch .setup-stamp
fi
