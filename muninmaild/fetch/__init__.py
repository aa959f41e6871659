"""Mail sources (IMAP, Maildir) and the loop that drives each: sync, wait for mail, back off."""
