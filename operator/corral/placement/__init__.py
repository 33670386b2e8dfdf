"""The gang placement solver: pure, exact on the objective, and explaining every refusal."""

from corral.placement.filters import candidate_pools, select_pools
from corral.placement.request import PlacementRequest
from corral.placement.result import NoFit, Placement
from corral.placement.solver import place, place_within

__all__ = [
    "NoFit",
    "Placement",
    "PlacementRequest",
    "candidate_pools",
    "place",
    "place_within",
    "select_pools",
]
