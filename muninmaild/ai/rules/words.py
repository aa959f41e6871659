"""Word lists for the offline rules backend, and the patterns built from them.

Lists hold English first, then a few common German and French words, so that a message in either
language still yields flags and to-dos. All matching ignores case and respects word boundaries.
"""

from __future__ import annotations

import re

from muninmaild.ai.rules.text import Phrases

RESPONSE_PHRASES = (
    *("let me know", "please confirm", "please reply", "please respond", "please advise"),
    *("get back to me", "get back to us", "rsvp", "your thoughts", "what do you think"),
    *("can you", "could you", "would you", "awaiting your reply", "need your input"),
    *("könnten sie", "können sie", "bitte um rückmeldung", "bitte bestätigen", "bitte antworten"),
    *("pourriez-vous", "pouvez-vous", "merci de confirmer", "merci de répondre"),
)
QUESTION_WORDS = (
    *("you", "your", "can", "could", "would", "will", "do", "we", "shall", "should"),
    *("sie", "du", "vous", "tu"),
)
URGENT_WORDS = (
    *("urgent", "urgently", "asap", "as soon as possible", "immediately", "right away"),
    *("overdue", "past due", "final notice", "final reminder", "outage", "down since"),
    *("by end of day", "eod", "emergency", "time-sensitive", "time sensitive"),
    *("dringend", "sofort", "umgehend", "eilt", "en urgence", "immédiatement", "dès que possible"),
)
NOT_URGENT_PHRASES = ("not urgent", "non-urgent", "nothing urgent", "pas urgent", "nicht dringend")
MEETING_WORDS = (
    *("meet", "meeting", "call on", "call at", "a call", "quick call", "phone call", "video call"),
    *("schedule", "reschedule", "invite", "invitation", "calendar", "available on"),
    *("available at", "availability", "free on", "free at", "slot", "catch up", "catch-up"),
    *("sync", "appointment", "lunch", "coffee chat", "get together", "termin", "treffen"),
    *("besprechung", "réunion", "rendez-vous"),
)
MEETING_RECAP_PHRASES = ("meeting notes", "meeting minutes", "minutes from", "notes from", "recap")
REQUEST_PHRASES = (
    *("please", "could you", "can you", "would you", "need you to", "make sure", "be sure to"),
    *("don't forget", "do not forget", "remember to", "action required", "kindly", "rsvp"),
    *("let me know", "you need to", "bitte", "könnten sie", "können sie", "merci de"),
    *("pourriez-vous", "pouvez-vous", "veuillez", "n'oubliez pas"),
)
# Polite formulas that contain a request word but ask for nothing.
NON_TASK_PHRASES = (
    *("please find", "please see attached", "please see below", "please note", "please ignore"),
    *("please be advised", "please be aware", "please disregard", "please excuse"),
    *("please don't hesitate", "please do not hesitate", "please feel free", "can you believe"),
    *("let me know if you have", "let me know if you need", "let me know if there"),
    *("bitte beachten", "merci de votre", "merci de vos", "merci de ta", "merci pour"),
)
LOW_PRIORITY_PHRASES = (
    *("when you get a chance", "when you get the chance", "when you have a chance", "no rush"),
    *("when you have time", "if you have time", "no hurry", "whenever", "at your convenience"),
    *("low priority", "keine eile", *NOT_URGENT_PHRASES),
)
DEADLINE_WORDS = (
    *("by", "before", "until", "till", "due", "deadline", "no later than", "expires", "expire"),
    *("payable", "bis", "spätestens", "avant", "au plus tard"),
)
TODAY_WORDS = ("today", "tonight", "heute", "aujourd'hui")
LIST_HEADINGS = ("action items", "action item", "next steps", "to do", "to-do", "todo", "tasks")

RESPONSE = Phrases(RESPONSE_PHRASES)
QUESTION_WORD = Phrases(QUESTION_WORDS)
URGENT = Phrases(URGENT_WORDS)
NOT_URGENT = Phrases(NOT_URGENT_PHRASES)
MEETING = Phrases(MEETING_WORDS)
RECAP = Phrases(MEETING_RECAP_PHRASES)
REQUEST = Phrases(REQUEST_PHRASES)
NON_TASK = Phrases(NON_TASK_PHRASES)
LOW = Phrases(LOW_PRIORITY_PHRASES)
LIST_HEADING = Phrases(LIST_HEADINGS)
TODAY_DEADLINE_RE = re.compile(
    r"(?<!\w)(?:due|by|before|until|till|no\s+later\s+than|deadline(?:\s+is)?|bis|avant)\s+"
    r"(?:[\w:.]+\s+){0,3}?(?:today|tonight|heute|aujourd'hui)(?!\w)"
    r"|(?<!\w)(?:today|tonight)\s+is\s+the\s+(?:deadline|last\s+day)(?!\w)"
)
DEADLINE = Phrases(DEADLINE_WORDS)
# A deadline word at most two words before a date: "by Friday", "due on 3 December".
DEADLINE_BEFORE_RE = re.compile(rf"(?:{DEADLINE.pattern.pattern})(?:\s+\w+){{0,2}}\s*:?\s*$")
CONNECTOR_RE = re.compile(
    r"^(?:(?:also|and|but|so|then|finally|lastly|additionally|plus|oh|btw|first(?:ly)?"
    r"|second(?:ly)?|next|außerdem|und|aussi|et|enfin)(?!\w)[,:]?\s+"
    r"|[^\W\d_][\w'-]*,\s+(?=(?:please|could|can|would|kindly)(?!\w)))",
    re.IGNORECASE,
)
REQUEST_PREFIX_RE = re.compile(
    r"^(?:(?:please|kindly|bitte|veuillez|merci\s+de|action\s+required\s*[:-]?)(?!\w)\s*"
    r"|(?:could|can|would|will)\s+you(?!\w)\s*(?:(?:please|also|kindly)\s+)*"
    r"(?:be\s+able\s+to\s+|mind\s+|like\s+to\s+)?"
    r"|(?:i\s+|we\s+)?need\s+you\s+to\s+|(?:don't|do\s+not)\s+forget\s+to\s+|remember\s+to\s+"
    r"|(?:make|be)\s+sure\s+to\s+"
    r"|(?:könnten|können)\s+sie\s+(?:bitte\s+)?|(?:pourriez|pouvez)-vous\s+)",
    re.IGNORECASE,
)
TRAILING_PLEASE_RE = re.compile(
    r"[,\s]+(?:please|bitte|s'il\s+vous\s+plaît|svp|thanks|thank\s+you)[\s.!?]*$", re.IGNORECASE
)
FILLER_RE = re.compile(
    r"^(?:(?:i\s+)?hope\b|how\s+are\s+you|(?:i\s+)?trust\s+(?:you|this)|happy\s+\w+day\b"
    r"|(?:i'm\s+|i\s+am\s+|we\s+are\s+)?looking\s+forward\b"
    r"|(?:many\s+)?(?:thanks|thank\s+you)(?:\s+so\s+much|\s+again)?\s+"
    r"(?:in\s+advance|for\s+(?:your|the)\s+(?:quick\s+)?(?:e-?mail|message|note|reply|response))"
    r"|(?:quick\s+question|just\s+a\s+quick\s+(?:note|one))\W*$)",
    re.IGNORECASE,
)
# A label in front of the point ("Quick question: are we ..."), dropped from summaries.
LEAD_IN_RE = re.compile(
    r"^(?:quick\s+question|just\s+a\s+quick\s+(?:note|one)|(?:just\s+)?fyi|heads\s+up|reminder"
    r"|kurze\s+frage|petite\s+question)\s*[:,-]\s+",
    re.IGNORECASE,
)
# X-Priority: 1 (Highest) and 2 (High); 3 is normal.
