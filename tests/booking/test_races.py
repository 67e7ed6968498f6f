"""No double booking under parallel requests, with real database connections.

- threads, each with its own connection, race `create_booking` (and the API) for
  one slot and for slots that only clash through the machine's buffer: on SQLite
  IMMEDIATE transactions serialize them, on PostgreSQL the exclusion constraint
  decides; either way one wins and the others get BookingConflict / 409;
- OS processes do the same on PostgreSQL (several app processes in production);
- a stateful property test runs random creates and cancels against the services
  and checks, after every step, that no two active bookings overlap.

Nothing here is mocked. Bookings fall next week (Tuesday, Wednesday), inside the
`lab` fixture's opening hours (Paris 08:00–18:00), far from the 60-minute notice
and the 90-day horizon."""

import json
import os
import random
import subprocess
import sys
import textwrap
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import quote

import pytest
from django.conf import settings as django_settings
from django.db import connection
from django.db.models import Exists, OuterRef
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)
from rest_framework.test import APIClient

from booking.errors import BookingConflict, BookingRejected
from booking.models import Booking, Quota
from booking.services import cancel_booking, create_booking
from core.errors import Conflict
from core.models import Organization, User
from core.services import create_api_token
from equipment.models import Machine
from tests import factories
from tests.booking.conftest import PARIS, at, next_weekday

BOOKINGS = "/api/v1/bookings/"
BUFFER = 30  # minutes kept free after each booking of the raced machine
THREADS = 10
JOIN_TIMEOUT = 60  # seconds; only reached if something hangs (a deadlock, a lost lock)


# --- slots and the invariant ---------------------------------------------------------


@dataclass(frozen=True)
class Slot:
    start: datetime
    end: datetime

    def held(self, buffer: int = BUFFER) -> tuple[datetime, datetime]:
        return self.start, self.end + timedelta(minutes=buffer)

    def clashes_with(self, other: "Slot", buffer: int = BUFFER) -> bool:
        (a_start, a_until), (b_start, b_until) = self.held(buffer), other.held(buffer)
        return a_start < b_until and b_start < a_until

    def __str__(self) -> str:
        local = self.start.astimezone(PARIS)
        return f"{local:%a %H:%M}–{self.end.astimezone(PARIS):%H:%M}"


def slot(day: datetime, start: str, end: str) -> Slot:
    (sh, sm), (eh, em) = (map(int, hhmm.split(":")) for hhmm in (start, end))
    return Slot(at(day, sh, sm), at(day, eh, em))


def tuesday() -> datetime:
    return next_weekday(1)


def clique(day: datetime) -> list[Slot]:
    """Ten different slots that all clash with each other once the 30-minute buffer
    is counted (every held period contains 11:10), several through the buffer only
    (10:00–11:00 then 11:00–12:00, 09:45–10:45 then 10:45–11:15, …)."""
    return [
        slot(day, "10:00", "11:00"),
        slot(day, "11:00", "12:00"),
        slot(day, "09:45", "10:45"),
        slot(day, "10:45", "11:15"),
        slot(day, "10:30", "11:00"),
        slot(day, "11:00", "11:30"),
        slot(day, "09:00", "11:00"),
        slot(day, "10:15", "11:15"),
        slot(day, "11:00", "13:00"),
        slot(day, "11:00", "11:45"),
    ]


def groups_of_cliques(day: datetime) -> list[list[Slot]]:
    """Three groups, each a clique (buffer included), no clash between groups."""
    return [
        [slot(day, "08:00", "09:00"), slot(day, "09:00", "09:30"), slot(day, "08:30", "09:15")],
        [
            slot(day, "11:00", "12:00"),
            slot(day, "12:00", "13:00"),
            slot(day, "11:30", "12:15"),
            slot(day, "12:00", "12:30"),
        ],
        [slot(day, "15:00", "16:00"), slot(day, "16:00", "17:00"), slot(day, "15:30", "16:30")],
    ]


def assert_is_clique(slots: list[Slot]) -> None:
    for i, a in enumerate(slots):
        for b in slots[i + 1 :]:
            assert a.clashes_with(b), f"test data: {a} and {b} should clash"


def assert_apart(groups: list[list[Slot]]) -> None:
    for i, group in enumerate(groups):
        assert_is_clique(group)
        for other in groups[i + 1 :]:
            for a in group:
                for b in other:
                    assert not a.clashes_with(b), f"test data: {a} and {b} should not clash"


def assert_no_double_booking() -> None:
    """The invariant, read from the database twice: by SQL (an active booking with
    another active one on its machine whose [start, blocked_until) meets its own)
    and pairwise in Python."""
    active = Booking.objects.active()
    overlapped = active.filter(
        Exists(
            Booking.objects.active()
            .filter(
                machine_id=OuterRef("machine_id"),
                start__lt=OuterRef("blocked_until"),
                blocked_until__gt=OuterRef("start"),
            )
            .exclude(pk=OuterRef("pk"))
        )
    )
    assert not overlapped.exists(), list(
        overlapped.values_list("pk", "machine_id", "start", "blocked_until")
    )
    rows = list(active.values_list("pk", "machine_id", "start", "end", "blocked_until"))
    for i, (pk, machine_id, start, end, until) in enumerate(rows):
        assert start < end <= until
        for other_pk, other_machine, other_start, _end, other_until in rows[i + 1 :]:
            if machine_id == other_machine:
                assert not (start < other_until and other_start < until), (pk, other_pk)


def assert_conflicts_name_a_clash(exc: BookingConflict, wanted: Slot, buffer: int = BUFFER):
    assert exc.message
    assert exc.conflicts, "a BookingConflict must say what it clashes with"
    start, until = wanted.held(buffer)
    for clash in exc.conflicts:
        assert clash["kind"] in {"booking", "maintenance"}
        assert clash["start"] < until and start < clash["end"], (clash, str(wanted))


# --- threads with their own connections ---------------------------------------------------


@dataclass(frozen=True)
class Attempt:
    user_id: int
    slot: Slot
    seed: int = 0


@dataclass
class Outcome:
    attempt: Attempt
    kind: str  # "won", "conflict", "error"
    value: object = None


def race(attempts: list[Attempt], attempt_once) -> list[Outcome]:
    """Run each attempt in its own thread and connection; a barrier releases them
    together once every thread has connected and loaded what it needs.
    `attempt_once(prepared, attempt)` makes the call; `prepare(user_id)` runs before
    the barrier."""
    barrier = threading.Barrier(len(attempts), timeout=JOIN_TIMEOUT)
    outcomes: list[Outcome | None] = [None] * len(attempts)

    def run(index: int, attempt: Attempt) -> None:
        try:
            prepared = attempt_once.prepare(attempt.user_id)
            barrier.wait()
            outcomes[index] = attempt_once(prepared, attempt)
        except BaseException as exc:
            barrier.abort()
            outcomes[index] = Outcome(attempt, "error", exc)
        finally:
            connection.close()

    threads = [
        threading.Thread(target=run, args=(index, attempt), name=f"racer-{index}")
        for index, attempt in enumerate(attempts)
    ]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + JOIN_TIMEOUT
    for thread in threads:
        thread.join(timeout=max(0.0, deadline - time.monotonic()))
    assert not any(thread.is_alive() for thread in threads), "a racer hangs (deadlock?)"
    return outcomes


class ViaService:
    """Calls booking.services.create_booking, like a page or a management command."""

    refused: tuple[type[Exception], ...] = ()  # rule refusals expected of a race, if any

    def __init__(self, machine: Machine, organization: Organization):
        self.machine_id, self.organization_id = machine.pk, organization.pk

    def load_machines(self):
        return Machine.objects.select_related("platform").get(pk=self.machine_id)

    def machine_for(self, machines, attempt: Attempt) -> Machine:
        return machines

    def prepare(self, user_id: int):
        # Fresh rows per thread, as a request would load them; this also opens the
        # thread's connection before the barrier.
        return (
            self.load_machines(),
            Organization.objects.get(pk=self.organization_id),
            User.objects.get(pk=user_id),
        )

    def __call__(self, prepared, attempt: Attempt) -> Outcome:
        machines, organization, user = prepared
        try:
            booking = create_booking(
                machine=self.machine_for(machines, attempt),
                organization=organization,
                by=user,
                start=attempt.slot.start,
                end=attempt.slot.end,
            )
        except BookingConflict as exc:
            return Outcome(attempt, "conflict", exc)
        except self.refused as exc:
            return Outcome(attempt, "refused", exc.problems)
        return Outcome(attempt, "won", booking.pk)


class ViaApi:
    """POSTs to the API with a real token, one APIClient per thread."""

    def __init__(self, machine: Machine, organization: Organization, secrets: dict[int, str]):
        self.machine_id, self.organization_id, self.secrets = (
            machine.pk,
            organization.pk,
            secrets,
        )

    def prepare(self, user_id: int):
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {self.secrets[user_id]}")
        User.objects.filter(pk=user_id).exists()  # connect before the barrier
        return client

    def __call__(self, client, attempt: Attempt) -> Outcome:
        response = client.post(
            BOOKINGS,
            {
                "machine": self.machine_id,
                "organization": self.organization_id,
                "start": attempt.slot.start.isoformat(),
                "end": attempt.slot.end.isoformat(),
            },
        )
        if response.status_code == 201:
            return Outcome(attempt, "won", response.json()["id"])
        body = response.json() if response.get("Content-Type") == "application/json" else {}
        if response.status_code == 409 and body.get("error", {}).get("code") == "booking_conflict":
            return Outcome(attempt, "conflict", body["error"])
        return Outcome(attempt, "error", f"HTTP {response.status_code}: {response.content[:500]}")


def bookers(lab) -> list[User]:
    """Everyone who may book for world.a's SME: its admin and member, the platform's
    manager and operator."""
    return [lab.a.org_member, lab.a.org_admin, lab.a.manager, lab.a.operator]


def buffered_machine(lab) -> Machine:
    machine = lab.a.machine
    machine.buffer_after_minutes = BUFFER
    machine.save()
    return machine


def assert_one_winner_per_group(outcomes: list[Outcome], groups: list[list[Slot]], machine):
    errors = [(str(o.attempt.slot), o.value) for o in outcomes if o.kind == "error"]
    assert not errors, f"racers failed with something else than BookingConflict: {errors}"
    winners = [o for o in outcomes if o.kind == "won"]
    for group in groups:
        group_winners = [o for o in winners if o.attempt.slot in group]
        assert len(group_winners) == 1, [str(o.attempt.slot) for o in group_winners]
    assert len(winners) == len(groups)
    for outcome in outcomes:
        if outcome.kind == "conflict" and isinstance(outcome.value, BookingConflict):
            assert_conflicts_name_a_clash(outcome.value, outcome.attempt.slot)
    active = Booking.objects.active().filter(machine=machine)
    assert sorted(active.values_list("pk", flat=True)) == sorted(o.value for o in winners)
    for booking in active:
        assert booking.blocked_until == booking.end + timedelta(minutes=BUFFER)
    assert_no_double_booking()


@pytest.mark.django_db(transaction=True)
def test_threads_racing_for_the_same_slot_leave_one_booking(lab):
    machine = buffered_machine(lab)
    wanted = slot(tuesday(), "09:00", "11:00")
    people = bookers(lab)
    attempts = [Attempt(people[i % len(people)].pk, wanted) for i in range(THREADS)]

    outcomes = race(attempts, ViaService(machine, lab.a.org))

    assert_one_winner_per_group(outcomes, [[wanted]], machine)
    assert sum(o.kind == "conflict" for o in outcomes) == THREADS - 1


@pytest.mark.django_db(transaction=True)
def test_threads_racing_for_slots_that_clash_only_through_the_buffer_leave_one(lab):
    machine = buffered_machine(lab)
    slots = clique(tuesday())
    assert_is_clique(slots)
    # Several pairs touch without the buffer: they clash only because of it.
    assert sum(a.end <= b.start for a in slots for b in slots) >= 5
    people = bookers(lab)
    attempts = [Attempt(people[i % len(people)].pk, s) for i, s in enumerate(slots)]

    outcomes = race(attempts, ViaService(machine, lab.a.org))

    assert_one_winner_per_group(outcomes, [slots], machine)


@pytest.mark.django_db(transaction=True)
def test_threads_trying_every_slot_in_their_own_order_leave_one_per_group(lab):
    """Each thread walks all slots of three separate groups in its own (seeded)
    order, so the races happen at different moments, and some slots are asked for
    again by others after they have been won."""
    machine = buffered_machine(lab)
    groups = groups_of_cliques(tuesday())
    assert_apart(groups)
    all_slots = [s for group in groups for s in group]
    people = bookers(lab)
    service = ViaService(machine, lab.a.org)

    class EverySlot:
        prepare = staticmethod(service.prepare)

        def __call__(self, prepared, attempt: Attempt) -> Outcome:
            order = all_slots[:]
            random.Random(attempt.seed).shuffle(order)
            return Outcome(
                attempt, "many", [service(prepared, Attempt(attempt.user_id, s)) for s in order]
            )

    walkers = [Attempt(people[i % len(people)].pk, all_slots[0], seed=i) for i in range(8)]
    outcomes = race(walkers, EverySlot())

    assert not [o.value for o in outcomes if o.kind == "error"]
    flat = [one for o in outcomes for one in o.value]
    assert len(flat) == 8 * len(all_slots)
    assert_one_winner_per_group(flat, groups, machine)


@pytest.mark.django_db(transaction=True)
def test_api_losers_get_409_booking_conflict_never_500(lab):
    machine = buffered_machine(lab)
    slots = clique(tuesday())
    people = bookers(lab)
    secrets = {user.pk: create_api_token(user=user, name="race")[1] for user in people}
    # Two racers per slot for half the slots: the same slot and overlapping ones.
    attempts = [Attempt(people[i % len(people)].pk, slots[i // 2]) for i in range(THREADS)]

    outcomes = race(attempts, ViaApi(machine, lab.a.org, secrets))

    assert_one_winner_per_group(outcomes, [slots], machine)
    for outcome in outcomes:
        if outcome.kind == "conflict":
            assert outcome.value["message"]
            assert outcome.value["details"]["conflicts"]


class OnItsOwnMachine(ViaService):
    """Each racer books on a machine of its own (`machines[attempt.seed]`): nothing
    clashes, and only a quota can refuse."""

    refused = (BookingRejected,)

    def __init__(self, machines: list[Machine], organization: Organization):
        self.machine_ids, self.organization_id = [m.pk for m in machines], organization.pk

    def load_machines(self):
        found = Machine.objects.select_related("platform").filter(pk__in=self.machine_ids)
        return {machine.pk: machine for machine in found}

    def machine_for(self, machines, attempt: Attempt) -> Machine:
        return machines[self.machine_ids[attempt.seed]]


@pytest.mark.django_db(transaction=True)
def test_threads_booking_different_machines_at_once_never_exceed_a_quota(lab):
    """A quota counts the organization's hours on every machine: bookings made at
    the same moment on different machines must still count each other."""
    Quota.objects.create(platform=lab.a.platform, period="week", max_hours=3)
    machines = [
        factories.MachineFactory(platform=lab.a.platform, machine_type=lab.a.machine.machine_type)
        for _ in range(THREADS)
    ]
    people = bookers(lab)[:2]  # the SME's own people: a manager's booking is no different
    attempts = [
        Attempt(people[i % 2].pk, slot(tuesday(), "09:00", "11:00"), seed=i) for i in range(THREADS)
    ]

    outcomes = race(attempts, OnItsOwnMachine(machines, lab.a.org))

    assert [o.value for o in outcomes if o.kind == "error"] == []
    assert sum(o.kind == "won" for o in outcomes) == 1  # 2 h of 3; a second would make 4
    for outcome in outcomes:
        if outcome.kind == "refused":
            assert [p["code"] for p in outcome.value] == ["quota_exceeded"]
    assert Booking.objects.active().filter(organization=lab.a.org).count() == 1


# --- OS processes (PostgreSQL) --------------------------------------------------------------

WORKER = textwrap.dedent(
    """
    import json, os, pathlib, random, sys, time
    from datetime import datetime

    import django

    django.setup()

    from django.db import connection
    from django.test import Client

    from booking.errors import BookingConflict
    from booking.services import create_booking
    from core.models import Organization, User
    from equipment.models import Machine

    job = json.loads(sys.argv[1])
    machine = Machine.objects.select_related("platform").get(pk=job["machine"])
    organization = Organization.objects.get(pk=job["organization"])
    user = User.objects.get(pk=job["user"])
    client = Client(HTTP_AUTHORIZATION="Bearer " + job["token"])
    slots = job["slots"]
    random.Random(job["seed"]).shuffle(slots)

    pathlib.Path(job["ready"]).touch()
    start_file = pathlib.Path(job["start"])
    give_up = time.monotonic() + 30
    while not start_file.exists():
        if time.monotonic() > give_up:
            sys.exit("no start signal")
        time.sleep(0.0005)

    def via_service(start, end):
        try:
            booking = create_booking(
                machine=machine, organization=organization, by=user, start=start, end=end
            )
        except BookingConflict as exc:
            return ("conflict" if exc.conflicts and exc.message else "error:empty"), None
        return "won", booking.pk

    def via_http(start, end):
        response = client.post(
            "/api/v1/bookings/",
            {
                "machine": machine.pk,
                "organization": organization.pk,
                "start": start.isoformat(),
                "end": end.isoformat(),
            },
            content_type="application/json",
        )
        if response.status_code == 201:
            return "won", response.json()["id"]
        code = response.json().get("error", {}).get("code") if response.status_code < 500 else ""
        if response.status_code == 409 and code == "booking_conflict":
            return "conflict", None
        return f"error:HTTP{response.status_code}:{code}", None

    call = via_http if job["via"] == "http" else via_service
    for start, end in slots:
        try:
            outcome, pk = call(datetime.fromisoformat(start), datetime.fromisoformat(end))
        except Exception as exc:
            outcome, pk = f"error:{type(exc).__name__}:{exc}", None
        print(json.dumps({"slot": [start, end], "outcome": outcome, "id": pk}), flush=True)
    connection.close()
    """
)
PROCESSES = 4


def database_url_for_workers() -> str:
    """The URL of the test database pytest-django made, for other processes."""
    db = connection.settings_dict
    credentials = quote(db["USER"] or "", safe="")
    if db["PASSWORD"]:
        credentials += ":" + quote(db["PASSWORD"], safe="")
    host = db["HOST"] or "127.0.0.1"
    port = f":{db['PORT']}" if db["PORT"] else ""
    return f"postgres://{credentials}@{host}{port}/{quote(db['NAME'], safe='')}"


@pytest.mark.skipif(
    connection.vendor != "postgresql",
    reason="several processes share one SQLite file only in development; production's "
    "several app processes run on PostgreSQL (set DATABASE_URL to run this)",
)
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("via", ["service", "http"])
def test_processes_racing_for_clashing_slots_leave_one_per_group(lab, tmp_path, via):
    machine = buffered_machine(lab)
    day = next_weekday(2)
    groups = [clique(day)[:6], *groups_of_cliques(next_weekday(3))]
    assert_apart(groups[1:])
    all_slots = [s for group in groups for s in group]
    people = bookers(lab)
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "core.settings",
        "DATABASE_URL": database_url_for_workers(),
        "CONN_MAX_AGE": "0",
        # Bookings send emails after commit; the development console backend would
        # print them into the workers' stdout, which carries their results.
        "EMAIL_BACKEND": "django.core.mail.backends.locmem.EmailBackend",
    }
    start_file = tmp_path / "start"
    workers = []
    for index in range(PROCESSES):
        user = people[index % len(people)]
        job = {
            "machine": machine.pk,
            "organization": lab.a.org.pk,
            "user": user.pk,
            "token": create_api_token(user=user, name=f"worker {index}")[1],
            "via": via,
            "slots": [[s.start.isoformat(), s.end.isoformat()] for s in all_slots],
            "seed": index,
            "ready": str(tmp_path / f"ready-{index}"),
            "start": str(start_file),
        }
        workers.append(
            subprocess.Popen(
                [sys.executable, "-c", WORKER, json.dumps(job)],
                cwd=django_settings.BASE_DIR,
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
        )
    try:
        deadline = time.monotonic() + 30
        while not all((tmp_path / f"ready-{i}").exists() for i in range(PROCESSES)):
            crashed = [w for w in workers if w.poll() is not None]
            assert not crashed, crashed[0].stderr.read()
            assert time.monotonic() < deadline, "workers did not start in 30 s"
            time.sleep(0.01)
        start_file.touch()
        results = [worker.communicate(timeout=30) for worker in workers]
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.kill()
                worker.wait()

    outcomes = []
    for worker, (out, err) in zip(workers, results, strict=True):
        assert worker.returncode == 0, err
        for line in out.splitlines():
            row = json.loads(line)
            start, end = (datetime.fromisoformat(v) for v in row["slot"])
            kind = row["outcome"] if row["outcome"] in {"won", "conflict"} else "error"
            value = row["id"] if kind == "won" else row["outcome"]
            outcomes.append(Outcome(Attempt(0, Slot(start, end)), kind, value))
    assert len(outcomes) == PROCESSES * len(all_slots)
    assert_one_winner_per_group(outcomes, groups, machine)


# --- random sequences (hypothesis, stateful) --------------------------------------------------


def test_random_creates_and_cancels_never_double_book(lab):
    """Random creates (15-minute grid, two machines with different buffers, some by
    the platform's manager with an override) and cancels. A model predicts each
    answer; after every step the database holds no overlapping active bookings."""
    first = buffered_machine(lab)
    second = factories.MachineFactory(
        platform=lab.a.platform, name="Laser a", buffer_after_minutes=15
    )
    machines = [first, second]
    days = [next_weekday(1), next_weekday(2)]
    member, manager = lab.a.org_member, lab.a.manager

    class Bookings(RuleBasedStateMachine):
        def __init__(self):
            super().__init__()
            # pk → (machine index, slot, active?)
            self.model: dict[int, tuple[int, Slot, bool]] = {}

        @rule(
            machine=st.integers(0, 1),
            day=st.integers(0, 1),
            quarter=st.integers(8 * 4, 18 * 4 - 1),  # starts 08:00 … 17:45
            quarters=st.integers(1, 16),  # 15 min … 4 h
            who=st.sampled_from(["member", "manager", "manager overriding"]),
        )
        def create(self, machine, day, quarter, quarters, who):
            start = at(days[day], quarter // 4, quarter % 4 * 15)
            wanted = Slot(start, start + timedelta(minutes=15 * quarters))
            buffer = machines[machine].buffer_after_minutes
            expected_problems = set()
            if quarters < 2:
                expected_problems.add("too_short")
            if quarter + quarters > 18 * 4:
                expected_problems.add("outside_opening_hours")
            overriding = who == "manager overriding"
            clashing = [
                s
                for m, s, active in self.model.values()
                if active and m == machine and s.clashes_with(wanted, buffer)
            ]
            try:
                booking = create_booking(
                    machine=Machine.objects.select_related("platform").get(pk=machines[machine].pk),
                    organization=lab.a.org,
                    by=member if who == "member" else manager,
                    start=wanted.start,
                    end=wanted.end,
                    override_reason="Customer emergency" if overriding else "",
                )
            except BookingRejected as exc:
                assert exc.problems, "a rejection must list its problems"
                assert all(p["message"] and p["code"] for p in exc.problems)
                assert not overriding, exc.problems  # every problem here is soft
                assert {p["code"] for p in exc.problems} == expected_problems
                return
            except BookingConflict as exc:
                assert_conflicts_name_a_clash(exc, wanted, buffer)
                assert overriding or not expected_problems, "rules are checked first"
                assert sorted((c["start"], c["end"]) for c in exc.conflicts) == sorted(
                    s.held(buffer) for s in clashing
                )
                return
            assert overriding or not expected_problems, expected_problems
            assert not clashing, f"{wanted} won over {[str(s) for s in clashing]}"
            assert booking.blocked_until == wanted.end + timedelta(minutes=buffer)
            assert booking.status == Booking.Status.CONFIRMED
            self.model[booking.pk] = (machine, wanted, True)

        @precondition(lambda self: self.model)
        @rule(pick=st.integers(min_value=0))
        def cancel(self, pick):
            pk = sorted(self.model)[pick % len(self.model)]
            machine, wanted, active = self.model[pk]
            booking = Booking.objects.get(pk=pk)
            if not active:
                with pytest.raises(Conflict) as refused:
                    cancel_booking(booking=booking, by=member)
                assert refused.value.code == "booking_not_active"
                return
            cancelled = cancel_booking(booking=booking, by=member)
            assert cancelled.status == Booking.Status.CANCELLED
            self.model[pk] = (machine, wanted, False)

        @invariant()
        def no_double_booking(self):
            assert_no_double_booking()
            active_pks = {pk for pk, (_m, _s, active) in self.model.items() if active}
            assert set(Booking.objects.active().values_list("pk", flat=True)) == active_pks

        def teardown(self):
            Booking.objects.all().delete()

    run_state_machine_as_test(
        Bookings,
        settings=hypothesis_settings(
            max_examples=30,
            stateful_step_count=20,
            deadline=None,
            derandomize=True,  # the same sequences on every run
            database=None,  # nothing written to .hypothesis/
            suppress_health_check=[HealthCheck.too_slow],
        ),
    )
