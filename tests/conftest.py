"""Shared fixtures for the test suite."""
import os
import sys

# The repository root holds the ComfyUI pack's __init__.py; tests import `a2h_core` and `nodes` from here.
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)
