"""Gatepost site and node provisioning, device module setup and update bundles."""
