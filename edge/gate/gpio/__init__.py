"""The gate's GPIO parts behind gpiozero; import them from edge.gate.actuators."""
