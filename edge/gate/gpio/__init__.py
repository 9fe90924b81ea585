"""The gate's GPIO parts behind gpiozero: config, relay, signals, inputs, and GateIO owning them."""
