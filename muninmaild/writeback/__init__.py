"""Results written back where the user reads mail: IMAP keywords on messages, the digest."""
