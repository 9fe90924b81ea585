"""The volunteer console: a local web page and JSON API over the gate's Checkpoint."""
