"""Health credentials: HCERT decoding and verification, trust and revocation lists, issuing."""
