"""Platform scales (weighing indicators) with continuous RS232 output: framing, driver, profile."""
