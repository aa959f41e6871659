"""Processing the queue: claiming, one message's handling, storing answers, retry policy."""
