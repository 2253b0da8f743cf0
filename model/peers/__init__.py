"""Peer models measured beside MMCL (``mmcl bench``); not used for prediction."""

from model.peers.mult import MulTConfig, MulTPeer

__all__ = ["MulTConfig", "MulTPeer"]
