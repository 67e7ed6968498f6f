"""Filters on related objects take plain ids.

django-filter's default for a foreign key checks the id against every row
("Select a valid choice" for an unknown id, nothing for a foreign one): that
would tell a caller which foreign ids exist. As plain numbers, an unknown id
and another tenant's id both simply match nothing."""

import django_filters
from django.db import models
from django_filters.filterset import FILTER_FOR_DBFIELD_DEFAULTS
from django_filters.rest_framework import DjangoFilterBackend


class IdFilterSet(django_filters.FilterSet):
    FILTER_DEFAULTS = {
        **FILTER_FOR_DBFIELD_DEFAULTS,
        models.ForeignKey: {"filter_class": django_filters.NumberFilter},
        models.OneToOneField: {"filter_class": django_filters.NumberFilter},
    }


class IdFilterBackend(DjangoFilterBackend):
    filterset_base = IdFilterSet
