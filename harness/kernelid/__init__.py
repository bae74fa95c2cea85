"""Kernel identity: the GNU build id of a kernel, from a running board or a vendor's build artifact."""
