"""XY-MD02-class RS485 Modbus RTU temperature/humidity sensors, polled on a shared bus."""
