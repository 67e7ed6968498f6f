"""The project's URLs plus a minimal DRF endpoint used as the baseline by
bench/booking.py: one INSERT into bench_slot, a table with the same kind of
btree_gist exclusion constraint as booking_booking."""

from django.db import connection, transaction
from django.urls import path
from rest_framework.response import Response
from rest_framework.views import APIView

from core.urls import urlpatterns as core_urlpatterns


class BaselineInsert(APIView):
    """Token-authenticated (the project's default classes), one row inserted."""

    def post(self, request):
        data = request.data
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(
                'INSERT INTO bench_slot (machine_id, start, "end")'
                " VALUES (%s, %s, %s) RETURNING id",
                [int(data["machine"]), data["start"], data["end"]],
            )
            (pk,) = cursor.fetchone()
        return Response({"id": pk}, status=201)


urlpatterns = [path("bench/insert/", BaselineInsert.as_view()), *core_urlpatterns]
