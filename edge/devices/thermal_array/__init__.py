"""GY-MCU90640-class thermal array: 32x24 temperatures over UART, the forehead found in them."""
