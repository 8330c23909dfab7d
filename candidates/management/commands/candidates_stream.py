"""``manage.py candidates_stream URL``: listen to a Kafka/Hopskotch topic and ingest its alerts."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from candidates.stream import AlertStreamConsumer, hop_messages


class Command(BaseCommand):
    help = "Consume alerts from a Kafka/Hopskotch topic (kafka://host:port/topic) into Baton's candidates."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("url", help="kafka://host:port/topic")
        parser.add_argument("--broker", default="", help="broker name given to the alerts (default: the survey's)")
        parser.add_argument("--batch-size", type=int, default=1000)
        parser.add_argument("--max-wait", type=float, default=1.0, help="seconds a partial batch may wait")
        parser.add_argument("--group-id", default=None, help="Kafka consumer group (default baton-candidates)")
        parser.add_argument("--no-auth", action="store_true", help="connect without hop credentials")

    def handle(self, *args: Any, **options: Any) -> None:
        messages, ack = hop_messages(options["url"], auth=not options["no_auth"], group_id=options["group_id"],
                                     idle=options["max_wait"])
        consumer = AlertStreamConsumer(broker=options["broker"], batch_size=options["batch_size"],
                                       max_wait=options["max_wait"], ack=ack)
        self.stdout.write(f"listening to {options['url']} ...")
        try:
            consumer.consume(messages)
        except KeyboardInterrupt:
            consumer.flush()
        stats = consumer.stats
        self.stdout.write(f"{stats.messages} messages, {stats.stored} stored, {stats.duplicate} duplicates, "
                          f"{stats.rejected} rejected in {stats.batches} batches")
