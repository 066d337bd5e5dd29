"""Usage ingestion: inbound-directory daemons, decryption, transformations, schemas."""
