"""The Kafka edge shared by the runtime, the read side and the tools: topic
administration and offsets (`admin`), producing and reading records (`clients`)."""
