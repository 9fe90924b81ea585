"""The gate node: devices to a decision, the barrier, a durable event, the volunteer console."""
