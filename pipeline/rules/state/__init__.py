"""The alerter's stateful stage: threshold/dedup windows of single-event rules and Sigma
v2.1 correlations over event time, with state serializable per key for a changelog topic.
Pure logic, no I/O."""

from pipeline.rules.state.codec import StateDecodeError
from pipeline.rules.state.stage import Stage

__all__ = ["Stage", "StateDecodeError"]
