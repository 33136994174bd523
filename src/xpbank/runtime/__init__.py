"""The stream runtime: the topics a deployment needs, the curriculum view every worker
keeps, and the engines that run `handle_record` over Kafka (`faust/`)."""
