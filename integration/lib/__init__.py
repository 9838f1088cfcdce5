"""Helpers for augur's Mininet integration tests and demo.

Run with Debian's /usr/bin/python3 (the Mininet package installs there), as
root.
"""
