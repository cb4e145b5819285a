"""Gray-zone convection toy: a field of plumes seen through grids of spacing ``dx``.

The high-resolution "truth" is a doubly periodic square of side ``length_km`` holding
non-overlapping convective plumes. Plume ``k`` has radius ``L_c`` (km), a smooth profile
``b(r) = cos^2(pi r / (2 L_c))`` for ``r < L_c`` (zero outside), a peak updraft ``W_k`` (m/s)
and a peak scalar anomaly ``Phi_k`` (K, think of moist static energy over c_p). The
environment subsides uniformly so that the domain-mean vertical velocity is zero. The plumes
carry a vertical eddy flux ``<w'phi'>`` (K m/s).

A model grid of spacing ``dx`` sees cell means. Per grid cell, the eddy flux splits exactly
(law of total covariance) into

* a **resolved** part ``(wbar - <w>)(phibar - <phi>)``, carried by the grid's own motions, and
* a **subgrid** part ``mean_cell(w phi) - wbar phibar``, which a parameterization must supply.

The split is computed numerically: each plume is evaluated on a fine grid of spacing
``h = dx / m`` (``h <= L_c / 16`` and ``h <= dx / 4``) aligned with the model grid, and only
the fine cells a plume touches are visited, so every ``dx`` from a few hundred metres to
tens of kilometres costs milliseconds. For ``dx << L_c`` the grid resolves the plumes and the
subgrid share tends to 0; for ``dx >> L_c`` the plumes vanish inside a cell and it tends to 1.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ._validate import finite_array, positive, positive_int

#: default domain side, in plume radii (200 km for L_c = 2 km)
LENGTH_IN_RADII = 100.0
#: default fraction of the domain area covered by updrafts
COVERAGE = 0.03
#: minimum centre-to-centre distance of two plumes, in radii (room for a stretched domain)
MIN_SEPARATION_IN_RADII = 2.5


@dataclass(frozen=True)
class PlumeField:
    """Non-overlapping plumes in a periodic square domain.

    Attributes
    ----------
    x_km, y_km : arrays (n_plumes,)
        Plume centres in ``[0, length_km)``.
    w_peak : array (n_plumes,)
        Peak updraft speed of each plume, m/s.
    phi_peak : array (n_plumes,)
        Peak scalar anomaly of each plume, K.
    radius_km : float
        Plume radius ``L_c`` (the profile is zero beyond it), km.
    length_km : float
        Side of the periodic domain, km.
    """

    x_km: np.ndarray
    y_km: np.ndarray
    w_peak: np.ndarray
    phi_peak: np.ndarray
    radius_km: float
    length_km: float

    def __post_init__(self):
        x = finite_array("x_km", self.x_km, ndim=1)
        if x.size == 0:
            raise ValueError("x_km is empty: a plume field must hold at least one plume")
        for name in ("y_km", "w_peak", "phi_peak"):
            arr = finite_array(name, getattr(self, name), ndim=1)
            if arr.shape != x.shape:
                raise ValueError(f"{name} must have the shape of x_km {x.shape}, got {arr.shape}")
            object.__setattr__(self, name, arr)
        object.__setattr__(self, "x_km", x)
        radius = positive("radius_km", self.radius_km)
        length = positive("length_km", self.length_km)
        if length < 4 * radius:
            raise ValueError(f"length_km must be at least 4 plume radii, got {length} km "
                             f"for radius {radius} km")
        object.__setattr__(self, "radius_km", radius)
        object.__setattr__(self, "length_km", length)

    @property
    def n_plumes(self) -> int:
        return int(self.x_km.size)


def plume_field(plume_radius_km: float = 2.0, n_plumes: int | None = None,
                length_km: float | None = None, seed: int = 0) -> PlumeField:
    """Draw a random field of non-overlapping plumes.

    Positions are uniform (rejection sampling keeps centres at least 2.5 radii apart),
    peak updrafts ``W ~ 1 + Exponential(3 m/s)`` and scalar anomalies
    ``Phi = 0.4 K s/m * W * U(0.5, 1.5)`` (stronger updrafts carry larger anomalies).
    By default the domain is 100 radii wide and plumes cover 3 % of it.
    """
    radius = positive("plume_radius_km", plume_radius_km)
    length = LENGTH_IN_RADII * radius if length_km is None else positive("length_km", length_km)
    if n_plumes is None:
        n_plumes = max(1, round(COVERAGE * length**2 / (math.pi * radius**2)))
    n_plumes = positive_int("n_plumes", n_plumes)
    sep = MIN_SEPARATION_IN_RADII * radius
    # random sequential packing of discs of diameter ``sep`` jams near 55 % cover; stay well below
    if n_plumes * np.pi * (sep / 2) ** 2 > 0.3 * length**2:
        raise ValueError(f"n_plumes={n_plumes} non-overlapping plumes do not fit in a "
                         f"{length} km domain; ask for fewer plumes or a larger length_km")
    rng = np.random.default_rng(seed)
    xs = np.empty(n_plumes)
    ys = np.empty(n_plumes)
    count = 0
    for _ in range(100 * n_plumes):
        if count == n_plumes:
            break
        x, y = rng.uniform(0, length, size=2)
        ddx = np.abs(xs[:count] - x)
        ddy = np.abs(ys[:count] - y)
        ddx = np.minimum(ddx, length - ddx)
        ddy = np.minimum(ddy, length - ddy)
        if count and np.min(ddx**2 + ddy**2) < sep**2:
            continue
        xs[count], ys[count] = x, y
        count += 1
    if count < n_plumes:
        raise ValueError(f"could not place n_plumes={n_plumes} non-overlapping plumes in a "
                         f"{length} km domain; ask for fewer plumes or a larger length_km")
    w_peak = 1.0 + rng.exponential(3.0, size=n_plumes)
    phi_peak = 0.4 * w_peak * rng.uniform(0.5, 1.5, size=n_plumes)
    return PlumeField(xs, ys, w_peak, phi_peak, radius, length)


def plume_profile(r_km, radius_km: float) -> np.ndarray:
    """Smooth plume shape ``cos^2(pi r / (2 L_c))`` for ``r < L_c``, zero beyond (dimensionless)."""
    radius = positive("radius_km", radius_km)
    r = finite_array("r_km", r_km)
    return np.where(r < radius, np.cos(0.5 * np.pi * np.minimum(r, radius) / radius) ** 2, 0.0)


@dataclass(frozen=True)
class Partition:
    """The eddy flux of a plume field on a grid of spacing ``dx_km``.

    Domain means (K m/s): ``total = resolved + subgrid``. Per-cell arrays of shape
    ``(n_cells, n_cells)``: ``w_bar`` (m/s) and ``phi_bar`` (K) are the cell-mean anomalies
    from the domain mean, ``subgrid_flux`` (K m/s) is the cell's unresolved flux, ``updraft_area``
    the fraction of the cell covered by plumes (0..1).
    """

    dx_km: float
    total: float
    resolved: float
    subgrid: float
    w_bar: np.ndarray
    phi_bar: np.ndarray
    subgrid_flux: np.ndarray
    updraft_area: np.ndarray

    @property
    def subgrid_fraction(self) -> float:
        """Share of the domain-mean eddy flux that the grid does not resolve."""
        return self.subgrid / self.total

    @property
    def active(self) -> np.ndarray:
        """Boolean mask of the cells that contain part of a plume."""
        return self.updraft_area > 0


def coarse_grain(field: PlumeField, dx_km: float) -> Partition:
    """Split the eddy flux of ``field`` into resolved and subgrid parts on a grid of spacing dx.

    The domain holds ``n = round(length_km / dx_km)`` cells per side; when ``dx_km`` does not
    divide ``length_km`` the domain and the plume positions (not the plume size) are stretched
    to ``n * dx_km``. ``dx_km`` must be at most half the domain.
    """
    if not isinstance(field, PlumeField):
        raise ValueError(f"field must be a PlumeField, got {type(field).__name__}")
    dx = positive("dx_km", dx_km)
    radius, length = field.radius_km, field.length_km
    if dx > length / 2:
        raise ValueError(f"dx_km must be at most half the domain ({length / 2} km), got {dx}")
    n_cells = max(2, round(length / dx))
    if n_cells > 4096:
        raise ValueError(f"dx_km={dx} gives {n_cells}^2 cells; use dx_km >= {length / 4096:.3g}")
    domain = n_cells * dx
    stretch = domain / length
    m = max(4, math.ceil(dx / (radius / 16)))
    h = dx / m
    n_fine = n_cells * m
    # fine-cell offsets covering one plume's footprint
    half = math.ceil(radius / h) + 1
    offsets = np.arange(-half, half + 1)
    size = n_cells * n_cells
    sum_w = np.zeros(size)
    sum_phi = np.zeros(size)
    sum_wphi = np.zeros(size)
    covered = np.zeros(size)
    for xk, yk, wk, pk in zip(field.x_km * stretch, field.y_km * stretch, field.w_peak,
                              field.phi_peak, strict=True):
        ix = math.floor(xk / h) + offsets
        iy = math.floor(yk / h) + offsets
        rx = (ix + 0.5) * h - xk
        ry = (iy + 0.5) * h - yk
        b = plume_profile(np.hypot(rx[:, None], ry[None, :]), radius)
        cell = ((ix % n_fine) // m)[:, None] * n_cells + ((iy % n_fine) // m)[None, :]
        cell, b = cell.ravel(), b.ravel()
        # plumes never overlap, so the product w*phi inside plume k is W_k Phi_k b^2
        sum_w += np.bincount(cell, weights=wk * b, minlength=size)
        sum_phi += np.bincount(cell, weights=pk * b, minlength=size)
        sum_wphi += np.bincount(cell, weights=wk * pk * b * b, minlength=size)
        covered += np.bincount(cell, weights=(b > 0).astype(float), minlength=size)
    per_cell = float(m * m)  # fine cells in one model cell
    w_cell = sum_w / per_cell
    phi_cell = sum_phi / per_cell
    wphi_cell = sum_wphi / per_cell
    w_mean, phi_mean = w_cell.mean(), phi_cell.mean()
    total = wphi_cell.mean() - w_mean * phi_mean
    resolved = np.mean(w_cell * phi_cell) - w_mean * phi_mean
    subgrid_cell = wphi_cell - w_cell * phi_cell
    shape = (n_cells, n_cells)
    return Partition(
        dx_km=dx, total=float(total), resolved=float(resolved),
        subgrid=float(subgrid_cell.mean()),
        w_bar=(w_cell - w_mean).reshape(shape), phi_bar=(phi_cell - phi_mean).reshape(shape),
        subgrid_flux=subgrid_cell.reshape(shape),
        updraft_area=np.minimum(covered / per_cell, 1.0).reshape(shape))


def subgrid_fraction(dx_km: float, plume_radius_km: float = 2.0, seed: int = 0) -> float:
    """Subgrid share of the plume field's vertical eddy flux on a grid of spacing ``dx_km``.

    Computed from the toy (:func:`plume_field` with the given radius and seed, then
    :func:`coarse_grain`), not from a formula: 0 when the grid resolves the plumes
    (``dx << L_c``), 1 when they are far below the grid scale (``dx >> L_c``).
    """
    dx = positive("dx_km", dx_km)
    field = plume_field(positive("plume_radius_km", plume_radius_km), seed=seed)
    return coarse_grain(field, dx).subgrid_fraction


def double_counting(dx_km: float, plume_radius_km: float = 2.0, seed: int = 0) -> float:
    """Relative overestimate of the total flux by a scale-unaware scheme on a grid of spacing dx.

    A conventional scheme supplies the whole eddy flux (it assumes every plume is subgrid) on
    top of what the grid already resolves, so the model carries ``total + resolved``; the
    overestimate is ``resolved / total = 1 - subgrid_fraction`` (0 = none, 1 = double).
    """
    return 1.0 - subgrid_fraction(dx_km, plume_radius_km, seed)


# ------------------------------------------------------------------ published partitions
def honnert_partition(dx_km, structure_km: float) -> np.ndarray:
    """Honnert, Masson & Couvreux (2011) similarity function for subgrid TKE (mixed layer).

    ``P(x) = (x^2 + 0.07 x^(2/3)) / (x^2 + (3/21) x^(2/3) + 3/42)`` with
    ``x = dx / (h + h_c)``, the grid spacing over the depth of the boundary layer plus cloud
    layer. ``structure_km`` plays the role of ``h + h_c``; choosing it for a toy is a modelling
    decision of the user. Returns the subgrid share, same shape as ``dx_km``.
    """
    x = finite_array("dx_km", dx_km)
    if np.any(x <= 0):
        raise ValueError("dx_km must be strictly positive")
    x = x / positive("structure_km", structure_km)
    x23 = x ** (2.0 / 3.0)
    return (x**2 + 0.07 * x23) / (x**2 + (3.0 / 21.0) * x23 + 3.0 / 42.0)


def arakawa_wu_partition(dx_km, plume_radius_km: float = 2.0) -> np.ndarray:
    """Arakawa & Wu (2013) reduction ``(1 - sigma)^2`` of the conventional eddy transport.

    ``sigma`` is the updraft area fraction of a grid cell. Here it is estimated, as operational
    implementations do, as one updraft of radius ``L_c`` per cell:
    ``sigma = min(1, pi L_c^2 / dx^2)``. Returns the subgrid share, same shape as ``dx_km``.
    """
    dx = finite_array("dx_km", dx_km)
    if np.any(dx <= 0):
        raise ValueError("dx_km must be strictly positive")
    radius = positive("plume_radius_km", plume_radius_km)
    sigma = np.minimum(1.0, np.pi * radius**2 / dx**2)
    return (1.0 - sigma) ** 2


# ------------------------------------------------------------------ learning across resolutions
def samples(dx_km_values, seeds=(0, 1, 2), plume_radius_km: float = 2.0) -> dict:
    """Per-cell training samples from the convecting cells of several fields and resolutions.

    Returns a dict of 1-D arrays of equal length: ``w_bar`` (m/s), ``phi_bar`` (K),
    ``dx_km`` (km), ``flux`` (the cell's subgrid flux, K m/s) and ``seed`` (which field).
    Only cells that contain part of a plume are kept.
    """
    dxs = finite_array("dx_km_values", dx_km_values)
    dxs = np.atleast_1d(dxs)
    if dxs.ndim != 1 or dxs.size == 0:
        raise ValueError(f"dx_km_values must be a non-empty 1-D list of spacings, got {dxs}")
    if np.any(dxs <= 0):
        raise ValueError("dx_km_values must be strictly positive")
    seeds = [int(s) for s in np.atleast_1d(seeds)]
    if not seeds:
        raise ValueError("seeds must hold at least one seed")
    radius = positive("plume_radius_km", plume_radius_km)
    out: dict[str, list] = {k: [] for k in ("w_bar", "phi_bar", "dx_km", "flux", "seed")}
    for seed in seeds:
        field = plume_field(radius, seed=seed)
        for dx in dxs:
            part = coarse_grain(field, float(dx))
            mask = part.active
            n = int(mask.sum())
            out["w_bar"].append(part.w_bar[mask])
            out["phi_bar"].append(part.phi_bar[mask])
            out["flux"].append(part.subgrid_flux[mask])
            out["dx_km"].append(np.full(n, float(dx)))
            out["seed"].append(np.full(n, seed))
    return {k: np.concatenate(v) for k, v in out.items()}


def dx_feature(dx_km, plume_radius_km: float = 2.0) -> np.ndarray:
    """The resolution input of a scale-aware closure: ``log(dx / L_c)`` (dimensionless).

    Grid spacings span two decades, so the network sees the logarithm of the spacing over the
    plume radius; standardise it with the other inputs, using training statistics only.
    """
    dx = finite_array("dx_km", dx_km)
    if np.any(dx <= 0):
        raise ValueError("dx_km must be strictly positive")
    return np.log(dx / positive("plume_radius_km", plume_radius_km))


#: scales of the asinh input/target transforms (m/s, K, K m/s): below them a transform is
#: linear, above it logarithmic, so cells from every resolution stay visible to the network
W_SCALE, PHI_SCALE, FLUX_SCALE = 0.05, 0.05, 0.01


def features(data: dict, scale_aware: bool = True, plume_radius_km: float = 2.0) -> np.ndarray:
    """Network inputs from :func:`samples` output: shape (n, 3) or (n, 2) without ``dx``.

    Columns: ``asinh(w_bar / 0.05 m/s)``, ``asinh(phi_bar / 0.05 K)`` and, for a scale-aware
    closure, :func:`dx_feature` of the grid spacing. Standardise them afterwards with
    statistics of the training set only.
    """
    if not isinstance(data, dict) or not {"w_bar", "phi_bar"} <= set(data):
        raise ValueError("data must be a dict with 'w_bar' and 'phi_bar' (see samples())")
    cols = [np.arcsinh(finite_array("data['w_bar']", data["w_bar"], ndim=1) / W_SCALE),
            np.arcsinh(finite_array("data['phi_bar']", data["phi_bar"], ndim=1) / PHI_SCALE)]
    if scale_aware:
        if "dx_km" not in data:
            raise ValueError("data must hold 'dx_km' for a scale-aware feature matrix")
        cols.append(dx_feature(data["dx_km"], plume_radius_km))
    return np.column_stack(cols)


def encode_flux(flux) -> np.ndarray:
    """Training target ``asinh(flux / 0.01 K m/s)`` from a subgrid flux in K m/s."""
    return np.arcsinh(finite_array("flux", flux) / FLUX_SCALE)


def decode_flux(z) -> np.ndarray:
    """Inverse of :func:`encode_flux`: subgrid flux in K m/s."""
    return FLUX_SCALE * np.sinh(finite_array("z", z))
