"""The order a worker takes messages in: settling stages first (sink, poll, submit), new input (produce) last."""

from __future__ import annotations

from kombu import Connection, Consumer, Exchange, Message, Queue

from dropq.workers.broker import Transport

STAGES = ("produce", "submit", "poll", "sink")


def test_a_worker_takes_sinks_then_polls_then_submits_then_new_parts(redis_url: str) -> None:
    """Five messages waiting in each stage's queue come out stage by stage, settling first, not round robin."""
    queues = [Queue(f"order.{stage}", Exchange(f"order.{stage}"), routing_key=f"order.{stage}") for stage in STAGES]
    taken: list[str] = []
    with Connection(redis_url, transport=Transport) as connection:
        channel = connection.channel()
        producer = connection.Producer(channel)
        for queue in queues:
            queue(channel).declare()
            for n in range(5):
                producer.publish({"n": n}, exchange=queue.exchange, routing_key=queue.routing_key, declare=[queue])

        def on_message(body: object, message: Message) -> None:
            taken.append(message.delivery_info["routing_key"].rsplit(".", 1)[-1])
            message.ack()

        channel.basic_qos(prefetch_size=0, prefetch_count=1)
        with Consumer(channel, queues=queues, callbacks=[on_message]):
            while len(taken) < 20:
                connection.drain_events(timeout=5)
    assert taken == ["sink"] * 5 + ["poll"] * 5 + ["submit"] * 5 + ["produce"] * 5
