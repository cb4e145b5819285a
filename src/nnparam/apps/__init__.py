"""Application toys beyond the atmosphere: ocean, land surface, mechanics, biology."""
