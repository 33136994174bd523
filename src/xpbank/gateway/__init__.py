"""`xpbank gateway`: an HTTP endpoint (IMS Caliper 1.2 §6 and xpbank's own routes) that
turns requests into records on the input topics. Stateless: scale it like a web tier."""
