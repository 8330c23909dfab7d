"""What a notification says: a subject, plain text and HTML (email), Block Kit (Slack), and a link back.

One :class:`Message` per outbox row, built when it is sent (a digest lists the
notifications folded into it). Links are absolute, on ``BATON_BASE_URL``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from django.template.loader import render_to_string
from django.urls import NoReverseMatch, reverse
from django.utils.html import escape

from tomsite import sandbox

from . import conf
from .events import catalogue, title_for
from .models import Notification

# Payload keys shown in a message's details (references and flags are for machines).
HIDDEN_KEYS = frozenset({"request", "data", "owned", "urgent"})
MAX_DETAILS = 12


@dataclass(frozen=True)
class Message:
    subject: str
    text: str
    html: str
    blocks: list[dict[str, Any]]
    link: str


def _url(name: str, **kwargs: Any) -> str | None:
    try:
        return conf.base_url() + reverse(name, kwargs=kwargs or None)
    except NoReverseMatch:
        return None


def link_for(event: str, payload: Mapping[str, Any]) -> str:
    """The Baton page a notification about ``event`` points to (the inbox when nothing better fits)."""
    candidates: list[str | None] = []
    if isinstance(payload.get("request_id"), int):
        candidates.append(_url("scheduling:request-detail", pk=payload["request_id"]))
    if isinstance(payload.get("claim_id"), int):
        candidates.append(_url("policies:claim-detail", pk=payload["claim_id"]))
    if event.startswith("candidate."):
        candidates.append(_url("candidates:page"))
    if isinstance(payload.get("target_id"), int):
        candidates.append(_url("targets:detail", pk=payload["target_id"]))
    if event.startswith("facility."):
        candidates.append(_url("observatories:network"))
    if event == "policy.changed" and isinstance(payload.get("team_slug"), str):
        candidates.append(_url("policies:policy", slug=payload["team_slug"]))
    candidates.append(_url("notifications:inbox"))
    return next((c for c in candidates if c), conf.base_url() + "/")


def details_of(payload: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(label, value) pairs worth showing a person, in payload order."""
    rows = []
    for key, value in payload.items():
        if key in HIDDEN_KEYS or isinstance(value, dict | list) or value is None or value == "":
            continue
        rows.append((key.replace("_", " "), str(value)[:300]))
    return rows[:MAX_DETAILS]


def slack_escape(text: str) -> str:
    """Slack's mrkdwn escaping: &, < and > are control characters there."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _button(link: str) -> dict[str, Any]:
    return {"type": "actions", "elements": [
        {"type": "button", "text": {"type": "plain_text", "text": "Open in Baton"}, "url": link, "action_id": "open_baton"},
    ]}


def _single(notification: Notification) -> Message:
    payload = notification.payload or {}
    title = title_for(notification.event, payload)
    link = link_for(notification.event, payload)
    details = details_of(payload)
    meaning = catalogue().get(notification.event, notification.event)
    team = notification.team.name if notification.team_id and notification.team else ""
    context = {"title": title, "details": details, "link": link, "event": notification.event, "meaning": meaning,
               "team": team, "urgent": notification.urgent, "preferences_url": _url("notifications:preferences") or link}
    subject = ("[Baton] URGENT: " if notification.urgent else "[Baton] ") + title
    fields = "\n".join(f"*{slack_escape(label)}:* {slack_escape(value)}" for label, value in details)
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": title[:150]}},
        {"type": "section", "text": {"type": "mrkdwn", "text": (fields or slack_escape(meaning))[:3000]}},
        {"type": "context", "elements": [{"type": "mrkdwn", "text": slack_escape(
            f"{notification.event}{' · ' + team if team else ''}{' · urgent' if notification.urgent else ''}")}]},
        _button(link),
    ]
    return Message(subject=subject[:250], text=render_to_string("notifications/email/message.txt", context),
                   html=render_to_string("notifications/email/message.html", context), blocks=blocks, link=link)


def _digest(notification: Notification) -> Message:
    limit = int(conf.setting("DIGEST_MAX_ITEMS"))
    items = list(notification.items.order_by("created_at", "pk")[: limit + 1])
    total = notification.items.count()
    shown: list[dict[str, Any]] = [{"title": title_for(i.event, i.payload or {}), "link": link_for(i.event, i.payload or {}),
                                    "at": i.created_at, "event": i.event} for i in items[:limit]]
    link = _url("notifications:inbox") or conf.base_url() + "/"
    kind = notification.get_digest_kind_display().lower()
    title = f"{total} Baton notification{'s' if total != 1 else ''} ({kind} digest)"
    context = {"title": title, "items": shown, "more": max(0, total - len(shown)), "link": link, "total": total,
               "kind": kind, "preferences_url": _url("notifications:preferences") or link}
    lines = "\n".join(f"• <{item['link']}|{slack_escape(item['title'])}>" for item in shown[:20])
    more = total - min(len(shown), 20)
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": title[:150]}},
        {"type": "section", "text": {"type": "mrkdwn", "text": (lines or "(nothing)")[:3000]}},
    ]
    if more > 0:
        blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": f"…and {more} more in your Baton inbox"}]})
    blocks.append(_button(link))
    return Message(subject=f"[Baton] {title}"[:250], text=render_to_string("notifications/email/digest.txt", context),
                   html=render_to_string("notifications/email/digest.html", context), blocks=blocks, link=link)


def _drill_marked(notification: Notification, message: Message) -> Message:
    """A drill's message says so first, and its link acknowledges it on the drill's page."""
    box = sandbox.current()
    if box is None:
        return message
    label = sandbox.label()
    link = _url("drills:ack", pk=box.drill_id, notification_id=notification.pk) or message.link
    blocks = [dict(block) for block in message.blocks]
    if blocks and blocks[0].get("type") == "header":
        blocks[0] = {"type": "header", "text": {"type": "plain_text", "text": (label + blocks[0]["text"]["text"])[:150]}}
    for block in blocks:
        if block.get("type") == "actions":
            block["elements"] = [{"type": "button", "text": {"type": "plain_text", "text": "Acknowledge (drill)"},
                                  "url": link, "action_id": "drill_ack"}]
    note = f"{label}This is a rehearsal, not a real event. Acknowledge: {link}\n\n"
    return Message(
        subject=(label + message.subject)[:250], text=note + message.text.replace(message.link, link),
        html=f"<p><strong>{escape(label)}</strong>This is a rehearsal, not a real event. "
             f'<a href="{escape(link)}">Acknowledge</a></p>' + message.html.replace(escape(message.link), escape(link)),
        blocks=blocks, link=link,
    )


def message_for(notification: Notification) -> Message:
    """The message a row becomes when it is sent (marked as a drill while one runs)."""
    message = _digest(notification) if notification.is_digest else _single(notification)
    return _drill_marked(notification, message)
