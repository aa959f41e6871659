"""Unit or integration: the rule `make check` relies on, enforced where processes start.

`make check` runs `pytest -m "not integration"`: the tests that need nothing but this process
(and the PostgreSQL server). A test is `integration` when it needs more: Dovecot, systemd,
the daemon binary as a process, or several processes at once. tests/conftest.py marks it so
when it is marked `slow` or uses a fixture in `INTEGRATION_FIXTURES`; a module whose tests
start the daemon or systemd says `pytestmark = pytest.mark.integration` itself. The helpers
that start such processes call `needs_integration()`: a test that starts one without the
mark fails at once, under `make test` as under `make check`, saying what to add.
"""

from __future__ import annotations

INTEGRATION_FIXTURES = frozenset({"dovecot", "dovecot_factory", "daemons"})

# Whether the running test is marked integration; None outside pytest (the benchmarks).
_current: bool | None = None


def set_current(integration: bool | None) -> None:
    global _current
    _current = integration


def needs_integration(what: str) -> None:
    if _current is False:
        import pytest  # here: the benchmarks use the helpers without pytest installed

        pytest.fail(
            f"this test starts {what}: mark it `integration` (module-level "
            "`pytestmark = pytest.mark.integration`, or a fixture from "
            "tests.kinds.INTEGRATION_FIXTURES), so that `make check` leaves it out",
            pytrace=False,
        )
