"""Delivery channels behind one interface: email, Slack and the in-app inbox.

A channel is chosen by name from ``BATON_NOTIFICATION_CHANNELS`` (name -> dotted
path; system check ``notifications.E001`` vets each path). A channel answers two
questions, each a narrow hook a subclass overrides:

* :meth:`NotificationChannel.address_for`: where a person's notification goes
  (raises :class:`AddressUnavailable` when it cannot go anywhere: the row is then
  marked failed, visibly, at once);
* :meth:`NotificationChannel.send`: send one message there, raising
  :class:`TransientDeliveryError` (retried with backoff) or
  :class:`PermanentDeliveryError` (marked failed) when it does not go out.

Email goes through Django's email backends (SMTP here; any anymail backend
works, and anymail's ``tags``/``metadata`` are set). Slack goes through
``slack-sdk``: an incoming webhook (the user's, the team's or the site's) or the
bot token's ``chat.postMessage``, with Block Kit and a link back to Baton.
"""

from __future__ import annotations

import smtplib
import urllib.error
from dataclasses import dataclass
from functools import cache
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.utils.module_loading import import_string

from . import conf
from .messages import Message, message_for
from .models import Notification, Preference, TeamSlack


class DeliveryError(Exception):
    """A message did not go out."""


class TransientDeliveryError(DeliveryError):
    """Worth retrying later (the server is down, busy or rate limiting); ``retry_after`` in seconds if known."""

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class PermanentDeliveryError(DeliveryError):
    """Retrying will not help (the address is refused, the destination is gone)."""


class AddressUnavailable(Exception):
    """The person cannot be reached on this channel (no email address, no Slack destination)."""


@dataclass(frozen=True)
class Address:
    """Where a notification goes. ``personal``: the person's own (their preferences then apply to it)."""

    value: str
    personal: bool = True


class NotificationChannel:
    """A way of delivering notifications. Subclasses override :meth:`address_for` and :meth:`send`.

    ``silent`` channels (the inbox) deliver by storing the row: they know no quiet
    hours, digests or rate limits.
    """

    name = ""
    silent = False

    def address_for(self, *, user: Any, team: Any, preference: Preference) -> Address:
        """Where ``user``'s notification from ``team`` (None: personal) goes; raise AddressUnavailable if nowhere."""
        raise NotImplementedError

    def send(self, *, notification: Notification, message: Message) -> str:
        """Send ``message`` to ``notification.address``; return the provider's id for it (may be empty).

        Raise TransientDeliveryError or PermanentDeliveryError when it does not go out;
        never return normally unless it did.
        """
        raise NotImplementedError

    def deliver(self, *, notification: Notification) -> str:
        """Render and send one outbox row (a single notification or a digest)."""
        return self.send(notification=notification, message=message_for(notification))


class InboxChannel(NotificationChannel):
    """The in-app inbox: storing the row is the delivery."""

    name = "inbox"
    silent = True

    def address_for(self, *, user: Any, team: Any, preference: Preference) -> Address:
        return Address(f"user:{user.pk}")

    def send(self, *, notification: Notification, message: Message) -> str:
        return ""

    def deliver(self, *, notification: Notification) -> str:
        return ""


class EmailChannel(NotificationChannel):
    """Email through Django's email backend: plain text and HTML, a stable Message-ID, anymail tags."""

    name = "email"

    def address_for(self, *, user: Any, team: Any, preference: Preference) -> Address:
        email = (getattr(user, "email", "") or "").strip()
        if not email:
            raise AddressUnavailable(f"{user.get_username()} has no email address")
        return Address(email.lower())

    def send(self, *, notification: Notification, message: Message) -> str:
        from django.core.mail import EmailMultiAlternatives, get_connection

        host = urlsplit(conf.base_url()).hostname or "baton.invalid"
        # The same row always has the same Message-ID, so a resend after a lost worker is recognisable.
        message_id = f"<baton-notification-{notification.pk}@{host}>"
        headers = {"Message-ID": message_id, "X-Baton-Event": notification.event or "digest"}
        email = EmailMultiAlternatives(subject=message.subject, body=message.text, to=[notification.address],
                                       headers=headers, connection=get_connection(fail_silently=False))
        email.attach_alternative(message.html, "text/html")
        # anymail reads these; Django's own backends ignore them.
        email.tags = [notification.event or f"digest-{notification.digest_kind}"]  # type: ignore[attr-defined]
        email.metadata = {"notification_id": str(notification.pk)}  # type: ignore[attr-defined]
        try:
            sent = email.send()
        except smtplib.SMTPRecipientsRefused as exc:
            codes = [code for code, _ in exc.recipients.values()]
            if codes and all(500 <= code < 600 for code in codes):
                raise PermanentDeliveryError(f"the mail server refused {notification.address}: {exc.recipients}") from exc
            raise TransientDeliveryError(f"the mail server deferred {notification.address}: {exc.recipients}") from exc
        except smtplib.SMTPAuthenticationError as exc:
            # A configuration problem an operator fixes; the messages wait for it.
            raise TransientDeliveryError(f"SMTP authentication failed: {exc.smtp_code} {exc.smtp_error!r}") from exc
        except smtplib.SMTPResponseException as exc:
            text = f"the mail server answered {exc.smtp_code} {exc.smtp_error!r}"
            if 500 <= exc.smtp_code < 600:
                raise PermanentDeliveryError(text) from exc
            raise TransientDeliveryError(text) from exc
        except (TimeoutError, smtplib.SMTPException, OSError) as exc:
            raise TransientDeliveryError(f"the mail server is unreachable: {exc!r}") from exc
        except Exception as exc:
            _raise_anymail(exc)
            raise
        if sent != 1:
            raise TransientDeliveryError("the email backend accepted no message")
        status = getattr(email, "anymail_status", None)
        return str(getattr(status, "message_id", None) or message_id)[:200]


def _raise_anymail(exc: Exception) -> None:
    """Classify an anymail (ESP API) error, when anymail is the backend; otherwise do nothing."""
    try:
        from anymail.exceptions import AnymailAPIError, AnymailRecipientsRefused
    except ImportError:
        return
    if isinstance(exc, AnymailRecipientsRefused):
        raise PermanentDeliveryError(str(exc)) from exc
    if isinstance(exc, AnymailAPIError):
        code = getattr(exc, "status_code", None)
        if code is None or code == 429 or code >= 500:
            raise TransientDeliveryError(str(exc)) from exc
        raise PermanentDeliveryError(str(exc)) from exc


class SlackChannel(NotificationChannel):
    """Slack through slack-sdk: incoming webhooks or the bot token, Block Kit with a link back to Baton.

    Destinations, first that applies: the person's own webhook; a direct message
    from the bot to their member id; their team's webhook or bot channel; the
    site's ``SLACK_WEBHOOK_URL``; the bot in ``SLACK_DEFAULT_CHANNEL``. Team and
    site destinations are shared: one message per event reaches them, whoever
    on the team the rule named.
    """

    name = "slack"

    def address_for(self, *, user: Any, team: Any, preference: Preference) -> Address:
        token = settings.SLACK_BOT_TOKEN
        if preference.slack_webhook_url:
            return Address(f"webhook:user:{user.pk}")
        if preference.slack_member_id and token:
            return Address(f"bot:{preference.slack_member_id}")
        if team is not None:
            team_slack = TeamSlack.objects.filter(team=team).first()
            if team_slack is not None and team_slack.webhook_url:
                return Address(f"webhook:team:{team.pk}", personal=False)
            if team_slack is not None and team_slack.channel and token:
                return Address(f"bot:{team_slack.channel}", personal=False)
        if settings.SLACK_WEBHOOK_URL:
            return Address("webhook:site", personal=False)
        if token and conf.setting("SLACK_DEFAULT_CHANNEL"):
            return Address(f"bot:{conf.setting('SLACK_DEFAULT_CHANNEL')}", personal=False)
        raise AddressUnavailable("Slack is not set up for you or your team")

    def send(self, *, notification: Notification, message: Message) -> str:
        from tomsite import sandbox

        if sandbox.fault("slack_down"):  # a drill's scripted fault: Slack answers nothing for a while
            raise TransientDeliveryError("drill: the Slack endpoint is down (injected fault)")
        kind, _, where = notification.address.partition(":")
        text = message.subject.removeprefix("[Baton] ") + f" <{message.link}|Open in Baton>"
        if kind == "webhook":
            return self._webhook(url=self._webhook_url(where), text=text, blocks=message.blocks)
        if kind == "bot":
            return self._bot(channel=where, text=text, blocks=message.blocks)
        raise PermanentDeliveryError(f"not a Slack destination: {notification.address!r}")

    def _webhook_url(self, where: str) -> str:
        owner, _, raw_pk = where.partition(":")
        pk = int(raw_pk) if raw_pk.isdigit() else 0
        url = ""
        if owner == "user":
            url = Preference.objects.filter(user_id=pk).values_list("slack_webhook_url", flat=True).first() or ""
        elif owner == "team":
            url = TeamSlack.objects.filter(team_id=pk).values_list("webhook_url", flat=True).first() or ""
        elif owner == "site":
            url = settings.SLACK_WEBHOOK_URL
        if not url:
            raise PermanentDeliveryError(f"the Slack webhook of {where} is no longer configured")
        return url

    def _webhook(self, *, url: str, text: str, blocks: list[dict[str, Any]]) -> str:
        from slack_sdk.errors import SlackRequestError
        from slack_sdk.webhook import WebhookClient

        client = WebhookClient(url, timeout=int(conf.setting("HTTP_TIMEOUT_S")), retry_handlers=[])
        try:
            response = client.send(text=text, blocks=blocks)
        except SlackRequestError as exc:
            raise PermanentDeliveryError(f"the Slack webhook URL is not usable: {exc}") from exc
        except (urllib.error.URLError, OSError, TimeoutError) as exc:
            raise TransientDeliveryError(f"Slack is unreachable: {exc!r}") from exc
        status = response.status_code
        if status == 200:
            return f"webhook {status}"
        detail = f"Slack answered {status}: {str(response.body)[:200]}"
        if status == 429 or status >= 500:
            raise TransientDeliveryError(detail, retry_after=_retry_after(response.headers))
        raise PermanentDeliveryError(detail)

    def _bot(self, *, channel: str, text: str, blocks: list[dict[str, Any]]) -> str:
        from slack_sdk import WebClient
        from slack_sdk.errors import SlackApiError

        token = settings.SLACK_BOT_TOKEN
        if not token:
            raise PermanentDeliveryError("SLACK_BOT_TOKEN is no longer set")
        base = settings.SLACK_API_URL if settings.SLACK_API_URL.endswith("/") else settings.SLACK_API_URL + "/"
        client = WebClient(token=token, base_url=base, timeout=int(conf.setting("HTTP_TIMEOUT_S")), retry_handlers=[])
        try:
            response = client.chat_postMessage(channel=channel, text=text, blocks=blocks, unfurl_links=False)
        except SlackApiError as exc:
            status = exc.response.status_code
            error = str(exc.response.get("error", ""))
            detail = f"Slack answered {status}: {error or exc}"
            if status == 429 or status >= 500 or error in {"ratelimited", "internal_error", "fatal_error",
                                                          "service_unavailable", "request_timeout"}:
                raise TransientDeliveryError(detail, retry_after=_retry_after(exc.response.headers)) from exc
            raise PermanentDeliveryError(detail) from exc
        except (urllib.error.URLError, OSError, TimeoutError) as exc:
            raise TransientDeliveryError(f"Slack is unreachable: {exc!r}") from exc
        return str(response.get("ts") or "")


def _retry_after(headers: Any) -> float | None:
    for name in ("Retry-After", "retry-after"):
        value = headers.get(name) if headers else None
        if isinstance(value, list):
            value = value[0] if value else None
        try:
            return float(value) if value is not None else None
        except (TypeError, ValueError):
            return None
    return None


@cache
def _channel(path: str) -> NotificationChannel:
    return import_string(path)()


def channel_get(name: str) -> NotificationChannel:
    """The channel configured under ``name``; KeyError if there is none."""
    return _channel(conf.channel_paths()[name])
