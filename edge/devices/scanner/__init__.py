"""GM65-class QR scanner on a UART: framing, driver and profile side by side."""
