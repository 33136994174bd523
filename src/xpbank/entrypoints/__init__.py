"""The processes: each runs one part of xpbank (the worker on either engine, and the
HTTP servers around it), so the layers below stay peers: the engines never import the
read side, and the read side never an engine."""
