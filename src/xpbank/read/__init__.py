"""The read side: the projector that follows the output topics into Redis, its pure
planner, the Redis adapter, and the HTTP API's content. Nothing here feeds a decision."""
