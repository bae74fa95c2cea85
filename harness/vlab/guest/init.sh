#!/bin/sh
# PID 1 of the virtual lab OS. It does only what a real board's early userspace
# does before handing over to init: mount the kernel filesystems, load the
# drivers for the devices this machine has, bring up the network QEMU's user
# networking expects, and name the board. Everything long-running (getty,
# dropbear, the fault agent) belongs to busybox init so it is respawned.
export PATH=/sbin:/bin:/usr/sbin:/usr/bin
/bin/busybox --install -s
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mkdir -p /dev/pts /dev/shm /run /tmp /var/log /var/run /root
mount -t devpts -o gid=5,mode=620,ptmxmode=666 devpts /dev/pts
mount -t tmpfs -o mode=1777 tmpfs /dev/shm
mount -t tmpfs -o mode=755 tmpfs /run

# Modules are listed dependencies-first at build time, so plain insmod suffices.
while read -r module; do
	insmod "/lib/modules/$module" || echo "vlab-init: cannot load $module"
done </lib/modules/load-order

# The bench names each board through fw_cfg, so one image serves every board of an arch.
fw_name=/sys/firmware/qemu_fw_cfg/by_name/opt/org.harness/hostname/raw
if [ -r "$fw_name" ]; then
	hostname "$(cat "$fw_name")"
else
	hostname "vlab-$(uname -m)"
fi
hostname >/etc/hostname

cat >/etc/os-release <<OSREL
NAME="@OS_NAME@"
ID=@OS_ID@
VERSION_ID="@OS_VERSION@"
VERSION="@OS_VERSION@ (@ARCH@)"
PRETTY_NAME="@OS_NAME@ @OS_VERSION@"
HOME_URL="https://example.invalid/harness"
OSREL

# A kernel panic on demand is the point of the fault agent: allow every sysrq.
echo 1 >/proc/sys/kernel/sysrq

ip link set lo up
tries=0
while [ ! -e /sys/class/net/eth0 ] && [ $tries -lt 50 ]; do
	sleep 0.1
	tries=$((tries + 1))
done
if [ -e /sys/class/net/eth0 ]; then
	ip addr add 10.0.2.15/24 dev eth0
	ip link set eth0 up
	ip route add default via 10.0.2.2
else
	echo "vlab-init: no eth0"
fi
# A board with more NICs has each on its own user network (harness/vlab/qemu_cmd.py:
# nic_network): ethN is 10.0.(2+N).15, the lab host 10.0.(2+N).2 through it.
for n in 1 2 3; do
	[ -e /sys/class/net/eth$n ] || continue
	ip addr add "10.0.$((2 + n)).15/24" dev "eth$n"
	ip link set "eth$n" up
done

# Boot messages stay in the console log as evidence; afterwards only warnings
# and worse (oops bodies, panics) reach the console so they cannot interleave
# with command output a test is reading.
dmesg -n 5
exec /sbin/init
