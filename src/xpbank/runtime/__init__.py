"""The stream runtime: the processing unit and its outbox policy, the topics a deployment
needs, the curriculum view every worker keeps, and the two engines that run the unit
over Kafka (`faust/`, `quix/`), chosen from a registry (`engines`)."""
