"""Property-based fuzzing of the whole API from its OpenAPI schema, with schemathesis.

The schema is read from /api/schema/ through the Django WSGI app, in-process. For every
operation, schemathesis sends its "coverage" cases (boundaries, wrong types, missing
fields, unexpected methods and media types) and then `MAX_EXAMPLES` random cases
through that WSGI app, in the test's thread and database transaction: the test
database is used and everything is rolled back.

- `test_api_as_manager_and_admin`: as a powerful user (manager of a platform, admin of
  an SME booking there), among seeded rows whose ids are mixed into generated paths and
  bodies, so that writes get past the 404s and the reference checks.
- `test_api_anonymously`: a few random cases per operation, all refused with a 401.
- `test_extreme_parameters`: huge numbers and out-of-range dates in every parameter.
- `test_every_operation_is_fuzzed`: a new endpoint is fuzzed without being listed here.

Responses must not be 5xx, and must match the schema: documented status, media type
and headers; bodies valid against their schema (errors against "Error").
"""

import re
from collections import Counter
from datetime import timedelta

import pytest
import schemathesis
from django.core import signals
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections, transaction
from django.urls import resolve
from django.utils import timezone
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from schemathesis.generation.meta import CoveragePhaseData

from core.models import ApiToken, Invitation, Membership
from core.services import create_api_token
from equipment.models import PlatformStaff
from tests import factories

SCHEMA_URL = "/api/schema/?format=json"
# Random ("fuzzing" phase) cases per operation, after its deterministic coverage cases.
MAX_EXAMPLES = 25
ANONYMOUS_MAX_EXAMPLES = 8
# Coverage cases walk every value of an enum (the 249 countries) for each media type.
ENUM_SAMPLE = 4
# Generated ids 0…11, in paths and in bodies' references, stand for seeded rows.
REAL_IDS = 12
REFERENCES = ("platform", "machine", "machine_type", "qualification", "organization")
# Spans whose generated bounds are swapped when reversed, so that they are not all refused.
SPANS = (("start", "end"), ("start_date", "end_date"), ("opens_at", "closes_at"))
MEMBER_EMAILS = [f"{role}@fuzz-sme.example" for role in Membership.Role]
FORM = "application/x-www-form-urlencoded"
HTTP_METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}

CHECKS = [
    schemathesis.checks.not_a_server_error,
    schemathesis.checks.status_code_conformance,
    schemathesis.checks.content_type_conformance,
    schemathesis.checks.response_headers_conformance,
    schemathesis.checks.response_schema_conformance,
]

# Statuses answered, per operation, by this session's authenticated fuzzing.
EXERCISED: dict[str, Counter] = {}


def load(max_examples: int, **phases) -> schemathesis.BaseSchema:
    config = schemathesis.Config.from_dict(
        {
            "phases": phases,
            "generation": {
                "max-examples": max_examples,
                # The same cases on every run, and no example database to write.
                "deterministic": True,
                "database": "none",
            },
        }
    )
    return schemathesis.openapi.from_wsgi(SCHEMA_URL, get_wsgi_application(), config=config)


schema = load(MAX_EXAMPLES)
anonymous_schema = load(
    ANONYMOUS_MAX_EXAMPLES, examples={"enabled": False}, coverage={"enabled": False}
)


# --- Checks -----------------------------------------------------------------------------


def send(case, **kwargs):
    """Call the app inside a savepoint rolled back afterwards: every case meets the
    seeded world, and a database error (a 500 to report) cannot poison the test's
    transaction for the cases after it, as it would on PostgreSQL."""
    savepoint = transaction.savepoint()
    try:
        return case.call(**kwargs)
    finally:
        transaction.savepoint_rollback(savepoint)


# --- Generation: fewer redundant cases, more rows that exist ----------------------------

_enum_cases: Counter = Counter()


@schema.hook("filter_case")
def fewer_coverage_cases(context, case):
    data = case.meta and case.meta.phase.data
    if isinstance(data, CoveragePhaseData) and case.media_type == FORM:
        return False  # DRF reads it into the same QueryDict as multipart, covered
    description = getattr(data, "description", None) or ""
    if not description.endswith(": Enum value"):
        return True
    key = (case.operation.label, case.media_type, description)
    _enum_cases[key] += 1
    return _enum_cases[key] <= ENUM_SAMPLE


@schema.hook("flatmap_path_parameters")
def small_ids(context, path_parameters):
    if not path_parameters or "id" not in path_parameters:
        return st.just(path_parameters)
    small = st.integers(0, REAL_IDS - 1).map(lambda i: {**path_parameters, "id": i})
    return st.one_of(st.just(path_parameters), small)


@schema.hook("flatmap_body")
def small_references(context, body):
    if not isinstance(body, dict):
        return st.just(body)
    replacements = {key: st.integers(0, REAL_IDS - 1) for key in REFERENCES if key in body}
    if "label_ids" in body:
        replacements["label_ids"] = st.lists(st.integers(0, REAL_IDS - 1), max_size=3)
    if "user" in body:
        replacements["user"] = st.sampled_from(MEMBER_EMAILS)
    if not replacements:
        return st.just(body)
    aimed = st.fixed_dictionaries(replacements).map(lambda values: {**body, **values})
    return st.one_of(st.just(body), aimed)


def real(value, ids: list[int]):
    """A small generated id (or its string, in coverage cases) → a seeded row's id."""
    if isinstance(value, str) and value.isdigit() and len(value) < 3:
        value = int(value)
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < REAL_IDS and ids:
        return ids[value % len(ids)]
    return value


# --- The world the fuzzer works in -------------------------------------------------------


class FuzzWorld:
    def __init__(self, *, secret: str, references: dict[str, list[int]]):
        self.headers = {"Authorization": f"Bearer {secret}"}
        self.references = references
        self._path_ids: dict[str, list[int]] = {}

    def path_ids(self, path: str) -> list[int]:
        """Ids of the rows behind `…/{id}/`, found through the view's serializer
        (or its queryset, for views about an object that answer something else)."""
        if path not in self._path_ids:
            view = getattr(resolve(path.replace("{id}", "1")).func, "cls", None)
            meta = getattr(getattr(view, "serializer_class", None), "Meta", None)
            model = getattr(meta, "model", None)
            if model is None:
                model = getattr(getattr(view, "queryset", None), "model", None)
            ids = model.objects.order_by("pk").values_list("pk", flat=True) if model else []
            self._path_ids[path] = list(ids[:REAL_IDS])
        return self._path_ids[path]

    def aim(self, case) -> None:
        if isinstance(case.path_parameters, dict) and "id" in case.path_parameters:
            ids = self.path_ids(case.operation.full_path)
            case.path_parameters["id"] = real(case.path_parameters["id"], ids)
        if isinstance(case.body, dict):
            for key, ids in self.references.items():
                value = case.body.get(key)
                if key == "label_ids" and isinstance(value, list):
                    case.body[key] = [real(item, ids) for item in value]
                elif key in case.body:
                    case.body[key] = real(value, ids)
            for first, last in SPANS:
                begin, end = case.body.get(first), case.body.get(last)
                if isinstance(begin, str) and isinstance(end, str) and begin > end:
                    case.body[first], case.body[last] = end, begin


@pytest.fixture(autouse=True)
def fast_password_hashing(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


# Operations that take no credentials: their own check (Stripe's signature) answers instead.
PUBLIC = {"POST /api/v1/stripe/webhook/"}


@pytest.fixture(autouse=True)
def stripe_webhook_secret(settings):
    """With a secret set, the webhook verifies what it gets: garbage is a 400."""
    settings.STRIPE_WEBHOOK_SECRET = "whsec_fuzz"


@pytest.fixture
def wsgi_in_test_transaction(db):
    """Django closes "old" connections around each request; inside the test's
    transaction that would break it, so (as django.test.Client does) don't."""
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    yield
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)


@pytest.fixture
def fuzz_world(wsgi_in_test_transaction):
    """A platform managed by the fuzzer, an SME it administers booking there, and a
    catalogue around them; plus a platform and an SME of someone else."""
    user = factories.UserFactory(email="fuzzer@fuzz-sme.example")
    platform = factories.PlatformFactory(name="Fuzz platform", slug="fuzz-platform")
    elsewhere = factories.PlatformFactory(name="Someone else's", slug="someone-else")
    labels = [factories.LabelFactory() for _ in range(3)]
    platform.labels.set(labels[:2])
    types = [factories.MachineTypeFactory() for _ in range(3)]
    machines = [factories.MachineFactory(platform=platform, machine_type=t) for t in types]
    machines.append(factories.MachineFactory(platform=elsewhere, machine_type=types[0]))
    for weekday in (0, 1):  # the other days are free for new opening hours
        factories.OpeningHoursFactory(platform=platform, weekday=weekday)
    factories.OpeningHoursFactory(platform=elsewhere)
    for days in (10, 20, 30):
        start = timezone.localdate() + timedelta(days=days)
        factories.ClosureFactory(platform=platform, start_date=start, end_date=start)
    factories.ClosureFactory(platform=elsewhere)
    for machine in machines:
        factories.MaintenanceWindowFactory(machine=machine)
    qualifications = [
        factories.QualificationFactory(platform=platform, machine_type=t) for t in types
    ]
    qualifications.append(factories.QualificationFactory(platform=elsewhere, machine_type=types[0]))

    org = factories.OrganizationFactory(legal_name="Fuzz SME")
    factories.MembershipFactory(user=user, organization=org, role=Membership.Role.ADMIN)
    factories.PlatformStaffFactory(user=user, platform=platform, role=PlatformStaff.Role.MANAGER)
    factories.PlatformMembershipFactory(organization=org, platform=platform)
    other_org = factories.OrganizationFactory(legal_name="Other SME")
    factories.PlatformMembershipFactory(organization=other_org, platform=elsewhere)
    for email, role in zip(MEMBER_EMAILS, Membership.Role, strict=True):
        member = factories.UserFactory(email=email)
        factories.MembershipFactory(user=member, organization=org, role=role)
        for qualification in qualifications[:2]:
            factories.UserQualificationFactory(
                user=member, qualification=qualification, granted_by=user
            )
    for email in ("new1@fuzz-sme.example", "new2@fuzz-sme.example"):
        Invitation.objects.create(
            organization=org,
            email=email,
            token_hash=f"fuzz-{email}",
            invited_by=user,
            expires_at=timezone.now() + timedelta(days=14),
        )
    for name in ("ci", "laptop"):
        create_api_token(user=user, name=name)
    token, secret = create_api_token(user=user, name="fuzz")
    # Used just now: no write on each request (which would be rolled back anyway).
    ApiToken.objects.filter(pk=token.pk).update(last_used_at=timezone.now())

    references = {
        "platform": [platform.pk, platform.pk, elsewhere.pk],
        "machine": [m.pk for m in machines],
        "machine_type": [t.pk for t in types],
        "qualification": [q.pk for q in qualifications],
        "organization": [org.pk, org.pk, other_org.pk],
        "label_ids": [label.pk for label in labels],
    }
    return FuzzWorld(secret=secret, references=references)


# --- The tests ------------------------------------------------------------------------------


@schema.parametrize()
@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_api_as_manager_and_admin(case, fuzz_world):
    fuzz_world.aim(case)
    response = send(case, headers=fuzz_world.headers)
    EXERCISED.setdefault(case.operation.label, Counter())[response.status_code] += 1
    case.validate_response(response, checks=CHECKS)


@anonymous_schema.parametrize()
@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_api_anonymously(case, wsgi_in_test_transaction):
    response = send(case)
    case.validate_response(response, checks=CHECKS)
    if case.operation.label in PUBLIC:
        assert response.status_code == 400, f"{case.operation.label}: {response.status_code}"
        return
    if response.status_code == 401:
        return
    # Only a URL naming no resource may answer otherwise, with a 404: an `id` that the
    # router cannot take ("a/b"; "1.5" reads as id 1 in an unknown format "5").
    plain_id = re.fullmatch(r"[^/.]+", str(case.path_parameters.get("id", "")))
    assert response.status_code == 404 and not plain_id, (
        f"{case.operation.label} answered {response.status_code} to an anonymous request"
    )


# Values random generation reaches only now and then, sent in every parameter they fit.
EXTREMES = {
    "integer": [10**30, -(10**30), 2**63],
    "number": ["1e309", "-8.9e+23", "NaN"],
    "date-time": ["2156-12-18T05:09:43+17:40", "0001-01-01T00:00:00-23:59"],
    "date": ["0001-01-01", "9999-12-31"],
}


def test_extreme_parameters(fuzz_world):
    """Huge ids and numbers, far dates and out-of-range offsets in every parameter."""
    failures = []
    for path, item in schema.raw_schema["paths"].items():
        for method, definition in item.items():
            if method not in HTTP_METHODS:
                continue
            operation = schema[path][method.upper()]
            ids = fuzz_world.path_ids(path) if "{id}" in path else []
            own_id = {"id": ids[0] if ids else 1} if "{id}" in path else {}
            for parameter in definition.get("parameters", []):
                parameter_schema = parameter.get("schema", {})
                kind = parameter_schema.get("format") or parameter_schema.get("type")
                for value in EXTREMES.get(kind, []):
                    if parameter["in"] == "query":
                        query = {parameter["name"]: value}
                        case = operation.Case(path_parameters=own_id, query=query)
                    elif parameter["in"] == "path":
                        case = operation.Case(path_parameters={parameter["name"]: value})
                    else:
                        continue
                    response = send(case, headers=fuzz_world.headers)
                    if response.status_code >= 500:
                        failures.append(f"{case.method} {response.request.url}")
    assert not failures, "5xx for:\n" + "\n".join(failures)


def served_operations(client) -> set[str]:
    paths = client.get(SCHEMA_URL).json()["paths"]
    return {
        f"{method.upper()} {path}"
        for path, item in paths.items()
        for method in item
        if method in HTTP_METHODS
    }


def test_every_operation_is_fuzzed(client, request):
    expected = served_operations(client)
    assert len(expected) > 50
    for fuzzed in (schema, anonymous_schema):
        operations = [result.ok() for result in fuzzed.get_all_operations()]  # raises if bad
        assert {operation.label for operation in operations} == expected
        assert len(operations) == len(expected)

    # When this session ran the authenticated fuzzing, every operation answered it.
    name = re.compile(r"^test_api_as_manager_and_admin\[(.+)\]$")
    selected = {m[1] for item in request.session.items if (m := name.match(item.name))}
    if selected and not hasattr(request.config, "workerinput"):  # not across xdist workers
        assert selected == expected
        assert set(EXERCISED) == expected
