"""Gatepost edge node: devices, gate and depot logic, outbox, and the shared MQTT contract."""
