"""Stock reserves at the depots: the catalogue of items and the ledger of their movements."""
