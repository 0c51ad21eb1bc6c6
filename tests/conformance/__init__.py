"""Emulator conformance: the same sysfs probe on the emulator and on real kernels (guests)."""
