"""Fixtures for the sandbox emulator (filled in with the sandbox)."""
