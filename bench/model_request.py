"""The chat request P4's anchors send, one for all: the model server does the same work for each.

Standard library only: the Celery anchor imports it in its own virtualenv.
"""

from __future__ import annotations

import json

MODEL_REQUEST = json.dumps(
    {
        "model": "gpt-oss-120b",
        "messages": [
            {"role": "system", "content": "Triage this message: summary, flags, to-dos."},
            {"role": "user", "content": "Subject: Budget review\n\nPlease send the figures."},
        ],
        "max_completion_tokens": 1024,
    }
).encode()
HEADERS = {"content-type": "application/json", "authorization": "Bearer bench"}
