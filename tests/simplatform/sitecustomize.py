"""Puts every Python process started with this directory on PYTHONPATH on the simulated
platform of simplatform.py, when BSTACK_SIMULATE_PLATFORM is set."""

import simplatform

simplatform.install_from_env()
