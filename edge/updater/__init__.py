"""Signed update bundles on the node: verify, install into the idle A/B slot, switch, roll back."""
