"""Generate the small, deterministic raw data of the spaceflights example.

Run from this folder with ``python make_data.py``; it (re)writes
``data/01_raw/{companies,shuttles,reviews}.csv``. The columns and value formats
mimic the Kedro spaceflights starter ("90%" ratings, "t"/"f" flags, "$1,325.0"
prices) so that the preprocessing nodes have real work to do.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

SEED = 42
N_COMPANIES = 300
N_SHUTTLES = 300
MISSING_RATE = 0.03
RAW_DIR = Path(__file__).resolve().parent / "data" / "01_raw"

LOCATIONS = [
    "Niue",
    "Anguilla",
    "Russian Federation",
    "Barbados",
    "Sao Tome and Principe",
    "Faroe Islands",
    "Malawi",
    "Guernsey",
    "Isle of Man",
    "Tokelau",
]
SHUTTLE_TYPES = ["Type V5", "Type F5", "Type A5", "Type V2", "Type F8"]
ENGINE_TYPES = ["Quantum", "Plasma", "Nuclear"]
ENGINE_VENDORS = [
    "ThetaBase Services",
    "Banks, Gomez and Walker",
    "Wheeler-Johnson",
    "Brooks-Jones",
]
CANCELLATION_POLICIES = ["strict", "moderate", "flexible"]


def _with_missing(rng: np.random.Generator, values: pd.Series) -> pd.Series:
    """Blank out a small, random share of ``values``."""
    return values.mask(rng.random(len(values)) < MISSING_RATE)


def _flags(rng: np.random.Generator, n: int, p_true: float) -> np.ndarray:
    return np.where(rng.random(n) < p_true, "t", "f")


def make_companies(rng: np.random.Generator) -> pd.DataFrame:
    """Companies with a percentage rating and a "t"/"f" IATA approval flag."""
    ids = rng.choice(np.arange(1_000, 40_000), size=N_COMPANIES, replace=False)
    rating = rng.integers(50, 101, size=N_COMPANIES)
    companies = pd.DataFrame(
        {
            "id": ids,
            "company_rating": pd.Series([f"{r}%" for r in rating], dtype=object),
            "company_location": rng.choice(LOCATIONS, size=N_COMPANIES),
            "total_fleet_count": rng.integers(1, 8, size=N_COMPANIES).astype(float),
            "iata_approved": _flags(rng, N_COMPANIES, 0.6),
        }
    )
    for column in ("company_rating", "total_fleet_count"):
        companies[column] = _with_missing(rng, companies[column])
    return companies


def make_shuttles(
    rng: np.random.Generator, companies: pd.DataFrame
) -> tuple[pd.DataFrame, np.ndarray]:
    """Shuttles, each owned by a company, with a "$1,325.0"-formatted price.

    Also returns the numeric price so that the reviews can be generated first
    and the price made to depend on them.
    """
    n = N_SHUTTLES
    ids = rng.choice(np.arange(40_000, 80_000), size=n, replace=False)
    company_idx = rng.integers(0, len(companies), size=n)
    engines = rng.integers(1, 5, size=n).astype(float)
    passenger_capacity = rng.integers(2, 13, size=n)
    crew = rng.integers(1, 7, size=n).astype(float)
    d_check = _flags(rng, n, 0.5)
    moon = _flags(rng, n, 0.3)
    shuttles = pd.DataFrame(
        {
            "id": ids,
            "shuttle_location": rng.choice(LOCATIONS, size=n),
            "shuttle_type": rng.choice(SHUTTLE_TYPES, size=n),
            "engine_type": rng.choice(ENGINE_TYPES, size=n),
            "engine_vendor": rng.choice(ENGINE_VENDORS, size=n),
            "engines": engines,
            "passenger_capacity": passenger_capacity,
            "cancellation_policy": rng.choice(CANCELLATION_POLICIES, size=n),
            "crew": crew,
            "d_check_complete": d_check,
            "moon_clearance_complete": moon,
            "company_id": companies["id"].to_numpy()[company_idx],
        }
    )
    company_rating = (
        companies["company_rating"].str.rstrip("%").astype(float).fillna(75.0) / 100
    ).to_numpy()[company_idx]
    iata = (companies["iata_approved"] == "t").to_numpy()[company_idx]
    price = (
        400.0
        + 250.0 * engines
        + 120.0 * passenger_capacity
        + 90.0 * crew
        + 150.0 * (d_check == "t")
        + 300.0 * (moon == "t")
        + 200.0 * iata
        + 900.0 * company_rating
    )
    for column in ("engines", "crew"):
        shuttles[column] = _with_missing(rng, shuttles[column])
    return shuttles, price


def make_reviews(rng: np.random.Generator, shuttles: pd.DataFrame) -> pd.DataFrame:
    """One review summary per shuttle, in a shuffled order."""
    n = len(shuttles)
    reviews = pd.DataFrame(
        {
            "shuttle_id": shuttles["id"].to_numpy()[rng.permutation(n)],
            "review_scores_rating": rng.integers(60, 101, size=n).astype(float),
            "review_scores_comfort": rng.integers(6, 11, size=n).astype(float),
            "review_scores_amenities": rng.integers(6, 11, size=n).astype(float),
            "review_scores_trip": rng.integers(6, 11, size=n).astype(float),
            "review_scores_crew": rng.integers(6, 11, size=n).astype(float),
            "review_scores_location": rng.integers(6, 11, size=n).astype(float),
            "review_scores_price": rng.integers(6, 11, size=n).astype(float),
            "number_of_reviews": rng.integers(0, 120, size=n),
            "reviews_per_month": np.round(rng.uniform(0.05, 5.0, size=n), 2),
        }
    )
    reviews["review_scores_rating"] = _with_missing(
        rng, reviews["review_scores_rating"]
    )
    return reviews


def main() -> None:
    """Write the three raw CSV files."""
    rng = np.random.default_rng(SEED)
    companies = make_companies(rng)
    shuttles, price = make_shuttles(rng, companies)
    reviews = make_reviews(rng, shuttles)

    rating_by_shuttle = reviews.set_index("shuttle_id")["review_scores_rating"]
    rating = rating_by_shuttle.reindex(shuttles["id"]).fillna(80.0).to_numpy()
    price = price + 8.0 * rating + rng.normal(0.0, 150.0, size=len(price))
    shuttles["price"] = [f"${p:,.1f}" for p in price]

    RAW_DIR.mkdir(parents=True, exist_ok=True)
    for name, frame in (
        ("companies", companies),
        ("shuttles", shuttles),
        ("reviews", reviews),
    ):
        path = RAW_DIR / f"{name}.csv"
        frame.to_csv(path, index=False, lineterminator="\n")
        print(f"wrote {len(frame)} rows to {path}")


if __name__ == "__main__":
    main()
