"""Filtering and ordering for every list endpoint.

- Related objects are filtered by plain, bounded ids. django-filter's default
  for a foreign key checks the id against every row ("Select a valid choice"
  for an unknown id, nothing for a foreign one), which would tell a caller
  which foreign ids exist; as numbers, both simply match nothing.
- Date-times carry their offset, as in request bodies (a bare local time is
  refused, not read as UTC), and are turned into UTC before they reach the
  database: PostgreSQL refuses offsets beyond ±16 h, and dates at the
  calendar's edge overflow.
- Every ordering ends with the primary key, so pages never overlap."""

from datetime import UTC

import django_filters
from django import forms
from django.core.exceptions import ValidationError
from django.db import models
from django.utils.translation import gettext_lazy as _
from django_filters.filterset import FILTER_FOR_DBFIELD_DEFAULTS
from django_filters.rest_framework import DjangoFilterBackend
from rest_framework.filters import OrderingFilter

from core.api.fields import NAIVE, is_naive_text

MAX_ID = 2**63 - 1  # the largest primary key a BIGINT column holds


class IdField(forms.IntegerField):
    def __init__(self, *args, **kwargs):
        kwargs.setdefault("min_value", -MAX_ID)
        kwargs.setdefault("max_value", MAX_ID)
        super().__init__(*args, **kwargs)


class IdFilter(django_filters.NumberFilter):
    field_class = IdField


class UTCDateTimeField(forms.DateTimeField):
    def to_python(self, value):
        if is_naive_text(value):
            raise ValidationError(NAIVE, code="naive")
        try:
            parsed = super().to_python(value)
            return parsed.astimezone(UTC) if parsed else parsed
        except OverflowError:
            raise ValidationError(_("This date-time is out of range."), code="invalid") from None


class UTCDateTimeFilter(django_filters.IsoDateTimeFilter):
    field_class = UTCDateTimeField


class IdFilterSet(django_filters.FilterSet):
    FILTER_DEFAULTS = {
        **FILTER_FOR_DBFIELD_DEFAULTS,
        models.AutoField: {"filter_class": IdFilter},
        models.BigAutoField: {"filter_class": IdFilter},
        models.ForeignKey: {"filter_class": IdFilter},
        models.OneToOneField: {"filter_class": IdFilter},
        models.DateTimeField: {"filter_class": UTCDateTimeFilter},
    }


class IdFilterBackend(DjangoFilterBackend):
    filterset_base = IdFilterSet


class StableOrderingFilter(OrderingFilter):
    def get_ordering(self, request, queryset, view):
        ordering = super().get_ordering(request, queryset, view)
        if ordering and not {"pk", "-pk", "id", "-id"} & set(ordering):
            ordering = [*ordering, "pk"]
        return ordering
