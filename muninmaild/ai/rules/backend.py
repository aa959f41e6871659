"""The `rules` backend: an offline, deterministic stand-in for the language model.

It needs no key and no network. Summaries are extractive, flags and to-dos come from word lists
matched case-insensitively on whole words, dates are read relative to the message's own date.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from email.utils import parseaddr, parsedate_to_datetime

from muninmaild.ai.base import ModelAnswer, ModelInput
from muninmaild.ai.rules import words
from muninmaild.ai.rules.dates import find_dates, first_date, has_day_or_time
from muninmaild.ai.rules.text import (
    MAX_TEXT_CHARS,
    Phrases,
    Sentence,
    normalise,
    sentences,
    squash,
    truncate,
    word_count,
)
from muninmaild.config.settings import DEFAULT_FLAGS, FlagSpec
from muninmaild.mail.headers import importance, is_automated, is_bulk
from muninmaild.records import Analysis, Priority, Todo, TokenUsage

log = logging.getLogger(__name__)

SUMMARY_LIMIT = 280
TASK_LIMIT = 200
MAX_TODOS = 10
SOON_DAYS = 2
# A deadline that passed this recently still makes a message urgent: it is overdue.
OVERDUE_DAYS = 30


@dataclass(frozen=True)
class Message:
    """One message read once: everything the rules look at."""

    subject: str
    sender: str
    body: str
    sentences: tuple[Sentence, ...]
    headers: Mapping[str, str]
    reference: date
    has_calendar: bool
    requests: tuple[bool, ...]

    @property
    def texts(self) -> tuple[str, ...]:
        return (self.subject, *(s.text for s in self.sentences))

    @property
    def bulk(self) -> bool:
        """Nobody waits for an answer to a list, a newsletter or a machine."""
        return is_bulk(self.headers) or is_automated(self.headers)


def reference_date(item: ModelInput, today: Callable[[], date] = date.today) -> date:
    """The message's own date, which relative phrases ("by Friday") are read against."""
    text = item.date.strip()
    for parse in (parsedate_to_datetime, datetime.fromisoformat):
        try:
            return parse(text).date()
        except (TypeError, ValueError, IndexError, OverflowError):
            continue
    return today()


def read_message(item: ModelInput, reference: date) -> Message:
    body = normalise(item.body[:MAX_TEXT_CHARS])
    found = sentences(body)
    return Message(
        subject=squash(normalise(item.subject[:1000])),
        sender=_sender(item.from_addr),
        body=body,
        sentences=found,
        headers={str(k).strip().lower(): str(v).strip() for k, v in item.headers.items()},
        reference=reference,
        has_calendar=item.has_calendar,
        requests=tuple(is_request(s.text) for s in found),
    )


def _sender(from_addr: str) -> str:
    name, addr = parseaddr(normalise(from_addr[:500]))
    return squash(name) or addr.strip() or squash(from_addr[:200]) or "unknown sender"


def summarise(item: ModelInput) -> str:
    """One or two informative sentences from the body, or a line built from the subject."""
    return _summary(read_message(item, date.min))


def _summary(msg: Message) -> str:
    picked = _lead_sentences(msg.sentences)
    if not picked:
        return subject_line(msg.sender, msg.subject)
    text = " ".join(picked)
    return truncate(text[:1].upper() + text[1:], SUMMARY_LIMIT)


def _lead_sentences(items: Sequence[Sentence]) -> list[str]:
    """The first informative sentence, and the next one too when both are short."""
    picked: list[str] = []
    for unit in filter(_informative, _summary_units(items)):
        if picked and (len(picked[0]) >= 120 or len(picked[0]) + len(unit) >= SUMMARY_LIMIT):
            break
        picked.append(unit)
        if len(picked) == 2:
            break
    return picked


def subject_line(sender: str, subject: str) -> str:
    """The summary of a message whose body says nothing usable."""
    return truncate(f"Message from {sender}: {subject or '(no subject)'}", SUMMARY_LIMIT)


def _summary_units(items: Sequence[Sentence]) -> Iterator[str]:
    """Sentences in order; a sentence ending in ":" takes the bullet items under it along."""
    i = 0
    while i < len(items):
        text, i = words.LEAD_IN_RE.sub("", items[i].text, count=1), i + 1
        if text.endswith(":"):
            bullets: list[str] = []
            while i < len(items) and items[i].bullet:
                bullets.append(items[i].text.rstrip(" .;"))
                i += 1
            text = f"{text} {'; '.join(bullets)}." if bullets else text
        yield text


def _informative(text: str) -> bool:
    return word_count(text) >= 3 and words.FILLER_RE.match(text) is None


def _flags(msg: Message, flags: Sequence[FlagSpec], todos: Sequence[Todo]) -> tuple[str, ...]:
    names: list[str] = []
    for spec in flags:
        if spec.name not in names and _flag_applies(msg, spec, todos):
            names.append(spec.name)
    return tuple(names)


def _flag_applies(msg: Message, spec: FlagSpec, todos: Sequence[Todo]) -> bool:
    if spec.name == "requires_response" and msg.bulk:
        return False  # not even through configured keywords: nobody waits on a newsletter
    builtin = _BUILTIN_FLAGS.get(spec.name)
    if builtin is not None and builtin(msg, todos):
        return True
    keywords = _keywords(tuple(spec.keywords))
    return keywords.found(msg.subject) or keywords.found(msg.body)


@functools.lru_cache(maxsize=64)
def _keywords(keywords: tuple[str, ...]) -> Phrases:
    return Phrases(keywords)


def _requires_response(msg: Message, todos: Sequence[Todo]) -> bool:
    return not msg.bulk and any(asks_reader(t) for t in msg.texts)


def asks_reader(text: str) -> bool:
    """A direct question to the reader, or a phrase asking for an answer."""
    if _found_except(words.RESPONSE, text, words.NON_TASK):
        return True
    asks = text.rstrip(" \"')»").endswith("?")
    return asks and _found_except(words.QUESTION_WORD, text, words.NON_TASK)


def _found_except(phrases: Phrases, text: str, exceptions: Phrases) -> bool:
    """Whether `phrases` occur in `text` outside the phrases in `exceptions`."""
    return phrases.found(text) and phrases.found(exceptions.blank(text))


def _urgent(msg: Message, todos: Sequence[Todo]) -> bool:
    return (
        importance(msg.headers) == "high"
        or any(urgent_text(t) for t in msg.texts)
        or any(_soon(t.due, msg.reference) for t in todos)
        or any(_soon(d, msg.reference) for t in msg.texts for d in deadlines(t, msg.reference))
    )


def urgent_text(text: str) -> bool:
    """Urgent words ("asap", "overdue", ...), or "today" tied to a deadline."""
    if _found_except(words.URGENT, text, words.NOT_URGENT):
        return True
    low = text.lower()
    today = any(w in low for w in words.TODAY_WORDS)
    return today and words.TODAY_DEADLINE_RE.search(low) is not None


def deadlines(text: str, reference: date) -> list[date]:
    """Dates in `text` that follow a deadline word: "by Friday", "due on 3 December"."""
    low = text.lower()
    if words.DEADLINE.pattern.search(low) is None:
        return []
    found = find_dates(low, reference)
    return [d for at, d in found if words.DEADLINE_BEFORE_RE.search(low, max(0, at - 40), at)]


def _soon(due: date | None, reference: date) -> bool:
    return due is not None and -OVERDUE_DAYS <= (due - reference).days <= SOON_DAYS


def _meeting_request(msg: Message, todos: Sequence[Todo]) -> bool:
    # A newsletter's "join our webinar on Tuesday" is not a request to meet the reader.
    if msg.has_calendar:
        return True
    return not is_bulk(msg.headers) and any(proposes_meeting(t) for t in msg.texts)


def proposes_meeting(text: str) -> bool:
    return words.MEETING.found(text) and not words.RECAP.found(text) and has_day_or_time(text)


_BUILTIN_FLAGS: dict[str, Callable[[Message, Sequence[Todo]], bool]] = {
    "requires_response": _requires_response,
    "urgent": _urgent,
    "meeting_request": _meeting_request,
}


def _todos(msg: Message) -> tuple[Todo, ...]:
    if msg.bulk:
        return ()
    todos: dict[str, Todo] = {}
    message_urgent = importance(msg.headers) == "high" or urgent_text(msg.subject)
    for i, intro in _requests(msg.sentences, msg.requests):
        todo = _todo(msg, i, intro, message_urgent)
        if todo is not None:
            todos.setdefault(todo.task.casefold(), todo)
        if len(todos) == MAX_TODOS:
            break
    return tuple(todos.values())


def _requests(
    items: Sequence[Sentence], asks: Sequence[bool]
) -> Iterator[tuple[int, Sentence | None]]:
    """Indexes of the sentences that ask something, each with the request its bullet sits under."""
    intro: Sentence | None = None
    for i, item in enumerate(items):
        if not item.bullet:
            intro = item if asks[i] or words.LIST_HEADING.found(item.text) else None
        if item.bullet and (intro is not None or asks[i]):
            yield i, intro
        elif not item.bullet and asks[i] and not _heads_list(items, i):
            yield i, None


def _heads_list(items: Sequence[Sentence], i: int) -> bool:
    return items[i].text.endswith(":") and i + 1 < len(items) and items[i + 1].bullet


def is_request(text: str) -> bool:
    return _found_except(words.REQUEST, text, words.NON_TASK)


def _todo(msg: Message, i: int, intro: Sentence | None, message_urgent: bool) -> Todo | None:
    item = msg.sentences[i]
    task = clean_task(item.text)
    if len(task) < 2:
        return None
    due = first_date(item.text, msg.reference)
    if due is None and intro is not None:
        due = first_date(intro.text, msg.reference)
    context = " ".join(s.text for s in (intro, item, _remark_after(msg, i)) if s)
    return Todo(task=task, priority=_priority(context, due, msg.reference, message_urgent), due=due)


def _remark_after(msg: Message, i: int) -> Sentence | None:
    """The sentence after a request when it comments on it ("No rush."), not when it asks more."""
    items = msg.sentences
    if items[i].bullet or i + 1 >= len(items) or items[i + 1].bullet or msg.requests[i + 1]:
        return None
    return items[i + 1]


def _priority(context: str, due: date | None, reference: date, message_urgent: bool) -> Priority:
    if urgent_text(context) or _soon(due, reference):
        return "high"
    if words.LOW.found(context):
        return "low"
    return "high" if message_urgent else "medium"


def clean_task(text: str) -> str:
    """The request as a task: no "please"/"could you", capitalised, no closing "?"."""
    task = text.strip()
    for _ in range(4):
        unlinked = words.CONNECTOR_RE.sub("", task, count=1)
        shorter = words.REQUEST_PREFIX_RE.sub("", unlinked, count=1)
        if shorter == task:
            break
        task = shorter
    task = words.TRAILING_PLEASE_RE.sub("", task).rstrip(" \t.?!,;:")
    return truncate(task[:1].upper() + task[1:], TASK_LIMIT)


def analyse_message(
    item: ModelInput,
    flags: Sequence[FlagSpec] = DEFAULT_FLAGS,
    today: Callable[[], date] = date.today,
) -> Analysis:
    msg = read_message(item, reference_date(item, today))
    todos = _todos(msg)
    return Analysis(summary=_summary(msg), flags=_flags(msg, flags, todos), todos=todos)


class RulesBackend:
    """Offline and deterministic: the same message and `today` always give the same answer."""

    name = "rules"
    model = "rules-v1"
    local = True
    reads_input = True

    def __init__(
        self,
        flags: Sequence[FlagSpec] = DEFAULT_FLAGS,
        today: Callable[[], date] | None = None,
    ) -> None:
        self._flags = tuple(flags)
        self._today = today or date.today

    async def analyse(self, item: ModelInput) -> ModelAnswer:
        try:
            analysis = analyse_message(item, self._flags, self._today)
        except Exception:
            # A bug in a word list must not fail a message: the processor would retry it forever.
            log.exception(
                "rules backend failed on email %s; answering from the subject", item.email_id
            )
            analysis = Analysis(summary=_fallback_summary(item), flags=(), todos=())
        return ModelAnswer(analysis=analysis, usage=TokenUsage(0, 0), model=self.model)

    async def aclose(self) -> None:
        return None


def _fallback_summary(item: ModelInput) -> str:
    sender = squash(str(getattr(item, "from_addr", ""))) or "unknown sender"
    return subject_line(sender, squash(str(getattr(item, "subject", ""))))
