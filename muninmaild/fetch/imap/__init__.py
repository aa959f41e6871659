"""IMAP as a mail source: connection, responses, UID sync and IDLE."""
