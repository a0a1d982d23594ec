"""Location look-ups: habitat codes from the raster window, species ranges by geodesic
distance (any latitude), radius bounds, bad input; public like the lists."""

from __future__ import annotations

from pathlib import Path

import pytest
import rasterio
from pyproj import Geod

from tests.apps.habitats.conftest import World, collection, feature, point, square
from tests.builders import assert_error
from worldbase.geo.classified import classes_near_in

GEOD = Geod(ellps="WGS84")
_CAP = {
    "type": "Polygon",
    "coordinates": [[[-180, 85], [180, 85], [180, 89.95], [-180, 89.95], [-180, 85]]],
}


def _info(world: World, who: str = "anonymous", **params: object) -> dict[str, list[object]]:
    response = world.client.get("/api/location_info/", params=params, headers=world.as_(who))
    assert response.status_code == 200, response.text
    return dict(response.json())


def _box_at(lon: float, lat: float, metres_east: float, size_m: float = 2_000.0) -> dict:
    """A small square range whose west edge is `metres_east` east of the point."""
    west, _, _ = GEOD.fwd(lon, lat, 90.0, metres_east)
    east, _, _ = GEOD.fwd(lon, lat, 90.0, metres_east + size_m)
    north = GEOD.fwd(lon, lat, 0.0, size_m / 2)[1]
    south = GEOD.fwd(lon, lat, 180.0, size_m / 2)[1]
    ring = [[west, south], [east, south], [east, north], [west, north], [west, south]]
    return {
        "type": "Feature",
        "geometry": {"type": "Polygon", "coordinates": [ring]},
        "properties": {},
    }


@pytest.mark.parametrize("lat", [0.0, 50.0, 78.0])
def test_species_ranges_within_10_km_at_any_latitude(raster_world: World, lat: float) -> None:
    lon = 20.0
    raster_world.species(
        name="Near",
        scientific_name="Prope prope",
        occurrence_data=collection(_box_at(lon, lat, 9_000)),
    )
    raster_world.species(
        name="Far",
        scientific_name="Procul procul",
        occurrence_data=collection(_box_at(lon, lat, 11_000)),
    )
    raster_world.species(
        name="Seen", scientific_name="Visus visus", occurrence_data=collection(point(lon, lat))
    )
    raster_world.species(
        name="Unnamed", scientific_name=None, occurrence_data=collection(_box_at(lon, lat, 100))
    )
    info = _info(raster_world, lon=lon, lat=lat)
    # Sightings are not ranges; a species without a scientific name answers with its name.
    assert info["species"] == ["Prope prope", "Unnamed"]
    wider = _info(raster_world, lon=lon, lat=lat, species_radius_m=12_000)
    assert wider["species"] == ["Procul procul", "Prope prope", "Unnamed"]


def test_habitat_codes_come_from_the_raster_window(raster_world: World, small_cog: Path) -> None:
    with rasterio.open(small_cog) as dataset:
        for lon, lat in ((10.0, 50.0), (-60.0, -5.0), (179.9, 10.0), (0.0, 88.0)):
            info = _info(raster_world, "user", lon=lon, lat=lat)
            assert info["habitats"] == classes_near_in(dataset, lon, lat, 1_000)
            value = next(dataset.sample([(lon, lat)]))[0]
            if value:
                assert int(value) in info["habitats"]
            wide = _info(raster_world, lon=lon, lat=lat, habitat_radius_m=50_000)
            assert set(info["habitats"]) <= set(wide["habitats"])
            assert wide["habitats"] == classes_near_in(dataset, lon, lat, 50_000)


def test_vector_habitats_count_and_ranges_ignore_sightings(raster_world: World) -> None:
    raster_world.habitat(
        name="Reef", iucn_code="9.8.1", raster_value=981, geometry=square(0.5, 0.5, 0.2)["geometry"]
    )
    info = _info(raster_world, lon=0.6, lat=0.6)
    assert 981 in info["habitats"]
    assert 981 not in _info(raster_world, lon=5.0, lat=5.0)["habitats"]


@pytest.mark.parametrize(
    "params",
    [
        {"lon": 181, "lat": 0},
        {"lon": 0, "lat": -90.5},
        {"lon": "x", "lat": 0},
        {"lat": 0},
        {"lon": 0, "lat": 0, "habitat_radius_m": 0},
        {"lon": 0, "lat": 0, "habitat_radius_m": 50_001},
        {"lon": 0, "lat": 0, "species_radius_m": 500_001},
        {"lon": 0, "lat": 0, "species_radius_m": -5},
    ],
)
def test_bad_look_ups(raster_world: World, params: dict[str, object]) -> None:
    assert_error(raster_world.client.get("/api/location_info/", params=params), 422)


def test_poles_and_antimeridian(raster_world: World) -> None:
    raster_world.species(
        name="Polar",
        scientific_name="Ursus maritimus",
        occurrence_data=collection(feature(_CAP)),
    )
    assert _info(raster_world, lon=0, lat=90)["species"] == ["Ursus maritimus"]
    raster_world.species(
        name="East",
        scientific_name="Orientalis",
        occurrence_data=collection(square(-179.99, 0, 0.5)),
    )
    assert _info(raster_world, lon=179.99, lat=0.1)["species"] == ["Orientalis"]


@pytest.mark.parametrize("who", ["user", "other", "admin", "game", "anonymous"])
def test_look_ups_are_public(raster_world: World, who: str) -> None:
    raster_world.species(occurrence_data=collection(square(9.5, 49.5)))
    info = _info(raster_world, who, lon=10, lat=50)
    assert info["species"] == ["Meles meles"]
