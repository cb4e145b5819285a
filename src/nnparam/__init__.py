"""nnparam: the engine behind the book *Neural-network parameterization of subgrid processes*.

Small modules with one idea each (see ``DESIGN.md``): plain functions over numpy arrays and
xarray objects, and torch only where a network is trained.
"""

__version__ = "0.1.0"
