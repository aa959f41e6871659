"""Turn a claimed row into what the model sees: trimmed body, telling headers, no attachments."""

from __future__ import annotations

from email.utils import format_datetime

from muninmaild.ai.base import ModelInput
from muninmaild.mail.headers import TRIAGE_HEADERS
from muninmaild.mail.trim import trim_for_model
from muninmaild.records import ClaimedMessage


def model_input(
    msg: ClaimedMessage, max_chars: int, *, needed: bool = True, send_body: bool = True
) -> ModelInput:
    """The model's view of `msg`; only its id when the backend does not read it (`needed`);
    without its body when its account keeps bodies private (`send_body`)."""
    if not needed:
        return ModelInput(msg.id, "", "", "", "", "")
    return ModelInput(
        email_id=msg.id,
        subject=msg.subject[:500],
        from_addr=msg.from_addr[:500],
        to_addrs=msg.to_addrs[:1000],
        date=format_datetime(msg.sent_at) if msg.sent_at else "",
        body=trim_for_model(msg.body_text, max_chars) if send_body else "",
        headers={k: v[:300] for k, v in msg.headers.items() if k in TRIAGE_HEADERS},
        attachment_names=msg.attachment_names[:20],
        has_calendar=msg.has_calendar,
        body_withheld=not send_body,
    )
