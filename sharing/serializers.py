"""API shapes of `sharing`: destinations (credentials write-only) and outbox rows."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from policies.fields import MAX_ID, StrictBooleanField, StrictSlugField, object_id, text

from .models import Destination, DestinationKind, OutboxStatus

HERMES_TOPIC = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$"


class DestinationSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    kind = serializers.ChoiceField(choices=DestinationKind.choices)
    base_url = serializers.CharField()
    auth = serializers.ChoiceField(choices=["token", "basic", "none"], help_text="how Baton signs in there (secrets are never shown)")
    username = serializers.CharField(help_text="the basic-auth user name, if any")
    topic = serializers.CharField()
    authors = serializers.CharField()
    enabled = serializers.BooleanField()
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()
    outbox = serializers.DictField(child=serializers.IntegerField(), help_text="outbox rows per status")


class DestinationWriteSerializer(serializers.Serializer):
    """A destination as written: the credentials are taken here and never given back."""

    name = StrictSlugField(max_length=80, help_text="what the team's policy names")
    kind = serializers.ChoiceField(choices=DestinationKind.choices)
    base_url = serializers.URLField(max_length=500, help_text="the TOM's or Hermes' root, e.g. https://hermes.lco.global/")
    token = text(max_length=500, required=False, allow_blank=True, write_only=True,
                 help_text="API token (TOM: a user's token; Hermes: the API key)")
    username = text(max_length=150, required=False, allow_blank=True, help_text="HTTP basic auth (TOM only)")
    password = text(max_length=500, required=False, allow_blank=True, write_only=True, trim_whitespace=False)
    topic = serializers.RegexField(HERMES_TOPIC, max_length=200, required=False, help_text="Hermes topic (default hermes.test)")
    authors = text(max_length=1000, required=False, allow_blank=True, help_text="Hermes message authors")
    enabled = StrictBooleanField(required=False, default=True)

    def validate_base_url(self, value: str) -> str:
        if not value.lower().startswith(("http://", "https://")):
            raise serializers.ValidationError("an http:// or https:// address")
        return value

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        instance: Destination | None = self.context.get("instance")
        merged = {f: getattr(instance, f) for f in ("kind", "token", "username", "password")} if instance else {}
        merged.update({k: v for k, v in attrs.items() if k in ("kind", "token", "username", "password")})
        kind, token = merged.get("kind"), merged.get("token") or ""
        username, password = merged.get("username") or "", merged.get("password") or ""
        errors: dict[str, str] = {}
        token_field = "token"  # noqa: S105 - a field name, not a secret
        if bool(username) != bool(password):
            errors["password" if username else "username"] = "basic auth needs both a username and a password"
        elif kind == DestinationKind.HERMES and not token:
            errors[token_field] = "Hermes needs an API token"
        elif kind == DestinationKind.HERMES and username:
            errors["username"] = "Hermes takes a token, not a username and password"
        elif kind == DestinationKind.TOM and not (token or username):
            errors[token_field] = "a TOM needs a token, or a username and password"
        elif token and username:
            errors[token_field] = "give a token or a username and password, not both"
        if errors:
            raise serializers.ValidationError(errors)
        return attrs


class DestinationPatchSerializer(DestinationWriteSerializer):
    """Any subset of the fields."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs["partial"] = True
        super().__init__(*args, **kwargs)


class OutboxItemSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    destination = serializers.CharField(help_text="the destination's name")
    kind = serializers.CharField(help_text="photometry or spectra")
    datum_type = serializers.CharField(help_text="the TOM model, e.g. tom_dataproducts.photometryreduceddatum")
    datum_id = serializers.IntegerField()
    target_id = serializers.IntegerField(allow_null=True)
    status = serializers.ChoiceField(choices=OutboxStatus.choices)
    attempts = serializers.IntegerField()
    created_at = serializers.DateTimeField()
    last_attempt_at = serializers.DateTimeField(allow_null=True)
    next_attempt_at = serializers.DateTimeField(allow_null=True)
    sent_at = serializers.DateTimeField(allow_null=True)
    last_error = serializers.CharField()
    remote_id = serializers.CharField()
    policy_version_id = serializers.IntegerField(allow_null=True)


class OutboxRetrySerializer(serializers.Serializer):
    items = serializers.ListField(child=object_id(max_value=MAX_ID), min_length=1, max_length=1000,
                                  help_text="ids of failed outbox rows to send again")


class OutboxRetriedSerializer(serializers.Serializer):
    requeued = serializers.IntegerField()
