"""Baton's REST API for the facility network: sites, facilities with instruments, and the status feed."""

from __future__ import annotations

from typing import Any

from django.shortcuts import get_object_or_404
from django.utils import timezone
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_field
from rest_framework import generics, serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from observatories.models import Facility, Instrument, Site
from observatories.selectors import facility_statuses_current

_ERRORS = {
    401: OpenApiResponse(description="not authenticated"),
    403: OpenApiResponse(description="not allowed"),
}


class SiteSerializer(serializers.ModelSerializer):
    class Meta:
        model = Site
        fields = [
            "code", "name", "latitude_deg", "longitude_deg", "elevation_m", "timezone", "continent",
            "clear_fraction", "clear_spell_nights", "cloudy_spell_nights", "source",
        ]


class InstrumentSerializer(serializers.ModelSerializer):
    filters = serializers.ListField(child=serializers.CharField())

    class Meta:
        model = Instrument
        fields = ["code", "kind", "filters", "readout_s", "limiting_mag_60s", "pixel_scale"]


class StatusSerializer(serializers.Serializer):
    state = serializers.ChoiceField(choices=["available", "weather", "downtime", "unknown"])
    reason = serializers.CharField()
    observed_at = serializers.DateTimeField(allow_null=True)
    fetched_at = serializers.DateTimeField(allow_null=True)
    stale = serializers.BooleanField()


class FacilitySerializer(serializers.ModelSerializer):
    site: serializers.SlugRelatedField = serializers.SlugRelatedField(slug_field="code", read_only=True)
    instruments = InstrumentSerializer(many=True, read_only=True)
    status = serializers.SerializerMethodField()

    class Meta:
        model = Facility
        fields = ["code", "name", "site", "telescope_class", "aperture_m", "adapter", "enabled", "simulated", "instruments", "status"]

    @extend_schema_field(StatusSerializer)
    def get_status(self, facility: Facility) -> dict[str, Any]:
        statuses = self.context.get("statuses") or {}
        current = statuses.get(facility.pk)
        if current is None:
            current = facility_statuses_current(facilities=[facility], now=timezone.now())[facility.pk]
        return StatusSerializer(current).data


class StatusFeedItemSerializer(StatusSerializer):
    facility = serializers.CharField()
    site = serializers.CharField()


class SiteListApi(generics.ListAPIView):
    """Every site of the network, with its coordinates and weather prior."""

    serializer_class = SiteSerializer
    pagination_class = None  # a network has tens of sites, not thousands
    queryset = Site.objects.order_by("code")

    @extend_schema(tags=["observatories"], responses={200: SiteSerializer(many=True), **_ERRORS})
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)


class FacilityListApi(generics.ListAPIView):
    """Every facility with its instruments and current status (stale statuses read as unknown)."""

    serializer_class = FacilitySerializer
    pagination_class = None  # a network has tens of facilities
    queryset = Facility.objects.select_related("site").prefetch_related("instruments").order_by("code")

    def get_serializer_context(self) -> dict[str, Any]:
        context = dict(super().get_serializer_context())
        context["statuses"] = facility_statuses_current(facilities=Facility.objects.all(), now=timezone.now())
        return context

    @extend_schema(tags=["observatories"], responses={200: FacilitySerializer(many=True), **_ERRORS})
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)


class FacilityDetailApi(APIView):
    """One facility by code."""

    @extend_schema(
        tags=["observatories"],
        responses={200: FacilitySerializer, 404: OpenApiResponse(description="no such facility"), **_ERRORS},
    )
    def get(self, request: Request, code: str) -> Response:
        facility = get_object_or_404(Facility.objects.select_related("site").prefetch_related("instruments"), code=code)
        return Response(FacilitySerializer(facility).data)


class FacilityStatusFeedApi(APIView):
    """The facility-status feed: each enabled facility's state now (available, weather, downtime, unknown)."""

    @extend_schema(tags=["observatories"], responses={200: StatusFeedItemSerializer(many=True), **_ERRORS})
    def get(self, request: Request) -> Response:
        facilities = list(Facility.objects.filter(enabled=True).select_related("site").order_by("code"))
        statuses = facility_statuses_current(facilities=facilities, now=timezone.now())
        rows = []
        for facility in facilities:
            current = statuses[facility.pk]
            rows.append(
                {
                    "facility": facility.code,
                    "site": facility.site.code,
                    "state": current.state,
                    "reason": current.reason,
                    "observed_at": current.observed_at,
                    "fetched_at": current.fetched_at,
                    "stale": current.stale,
                }
            )
        return Response(StatusFeedItemSerializer(rows, many=True).data)
