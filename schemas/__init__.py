"""The Avro schemas (``*.avsc``): the repository's one copy, installed as package data of this
package so an installed ``trailpipe`` reads them through :mod:`importlib.resources`
(:mod:`pipeline.events.schemas`). See README.md here for naming and evolution."""
