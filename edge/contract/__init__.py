"""The MQTT contract: every topic and every payload that crosses the broker."""
