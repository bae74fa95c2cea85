"""Board certification harness: certify boards, reproduce customer cases, feed the eligibility registry."""

__version__ = "0.1.0"
