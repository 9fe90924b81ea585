"""Device drivers of a node: one folder per part, framing separate from I/O."""
