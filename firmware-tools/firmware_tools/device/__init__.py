"""`gatepost fw device …`: set up the modules a node reads over their own serial protocols."""
