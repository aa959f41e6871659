"""The digest: a period's mail and the open to-dos, as data, text, HTML and a MIME message."""
