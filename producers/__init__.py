"""Getting events in: the Kafka publisher, the durable outbox, file import, simulation."""
