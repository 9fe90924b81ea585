"""GY-MCU90614-class IR thermometer on a UART: framing, driver and profile side by side."""
