"""USB camera QR reader: OpenCV capture on its own thread, codes decoded by qrimage."""
