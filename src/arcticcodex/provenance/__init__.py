"""Keys, signatures and verification."""
