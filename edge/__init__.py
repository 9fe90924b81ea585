"""Gatepost edge node: device drivers, gate and depot logic, outbox, and the shared MQTT contract."""
