"""Spreading work over devices and hosts: the data-parallel mesh and multi-host start-up."""
