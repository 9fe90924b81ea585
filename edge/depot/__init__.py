"""The depot node: temperature/humidity sensors on RS485 buses, polled into the outbox."""
