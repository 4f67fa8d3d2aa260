"""Super-network generation: elastic width, depth and kernel on any PyTorch model."""

from .api import create_supernet
from .search_space import SearchSpace, SearchSpaceError, SubnetConfig, Variable
from .supernet import SuperNetwork, fingerprint

__all__ = [
    "create_supernet",
    "SuperNetwork",
    "SearchSpace",
    "SearchSpaceError",
    "SubnetConfig",
    "Variable",
    "fingerprint",
]
