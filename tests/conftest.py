"""Suite-wide pytest configuration: the virtual-lab board fixtures (sim_board, qemu_board, ...)."""

pytest_plugins = ["harness.vlab.fixtures"]
