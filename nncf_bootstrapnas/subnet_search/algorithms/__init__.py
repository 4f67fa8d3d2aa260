"""Built-in search algorithms; importing registers them in ``registry.SEARCH_ALGORITHMS``."""

from nncf_bootstrapnas.subnet_search.algorithms.base import SearchAlgorithm
from nncf_bootstrapnas.subnet_search.algorithms.linas import LINAS
from nncf_bootstrapnas.subnet_search.algorithms.nsga import NSGA2Search, RNSGA2Search
from nncf_bootstrapnas.subnet_search.algorithms.random_search import RandomSearch

__all__ = ["LINAS", "NSGA2Search", "RNSGA2Search", "RandomSearch", "SearchAlgorithm"]
