#!/bin/sh
# Out-of-band fault agent. The bench writes one command a line to the
# virtio-serial port org.harness.agent; the guest acts without the console or
# SSH being involved, so a fault is injected exactly as a test asked for it.
# Each command is acknowledged before it is carried out, because after
# `panic` or `reset` nothing more can be said.
port=""
for dir in /sys/class/virtio-ports/*; do
	if [ "$(cat "$dir/name" 2>/dev/null)" = org.harness.agent ]; then
		port="/dev/${dir##*/}"
	fi
done
if [ -z "$port" ]; then
	# No agent port on this machine: stay alive so init does not respawn us in a loop.
	exec sleep 2147483647
fi
exec 3<>"$port"
while true; do
	if ! read -r command <&3; then
		# The host side is not connected: reads return end-of-file until it is.
		sleep 1
		continue
	fi
	case "$command" in
	ping) echo "pong" >&3 ;;
	panic)
		echo "ok panic" >&3
		echo 1 >/proc/sys/kernel/sysrq
		echo c >/proc/sysrq-trigger
		;;
	reset)
		echo "ok reset" >&3
		echo b >/proc/sysrq-trigger
		;;
	poweroff)
		echo "ok poweroff" >&3
		echo o >/proc/sysrq-trigger
		;;
	sync)
		sync
		echo "ok sync" >&3
		;;
	"") ;;
	*) echo "error unknown command: $command" >&3 ;;
	esac
done
