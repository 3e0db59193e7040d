"""Hundred-block addresses and CRS transforms."""

from __future__ import annotations

import pytest

from crossbeat.geo.address import hundred_block
from crossbeat.geo.crs import CRSError, distance_to_extent_m, is_wgs84, parse_crs, to_wgs84


@pytest.mark.parametrize(
    ("address", "block"),
    [
        ("4851 KOKOMO DR", "4800 BLOCK KOKOMO DR"),
        ("  4851   KOKOMO  DR ", "4800 BLOCK KOKOMO DR"),
        ("4851 KOKOMO DR APT 12", "4800 BLOCK KOKOMO DR"),
        ("4851 KOKOMO DR #12B", "4800 BLOCK KOKOMO DR"),
        ("4851 KOKOMO DR, UNIT 3", "4800 BLOCK KOKOMO DR"),
        ("35 W WACKER DR STE 100", "0 BLOCK W WACKER DR"),
        ("4851-4853 KOKOMO DR", "4800 BLOCK KOKOMO DR"),
        ("4851A KOKOMO DR", "4800 BLOCK KOKOMO DR"),
        ("221B Baker Street", "200 block Baker Street"),
        ("Flat 3, 12 Some Road", "0 block Some Road"),
        ("12 MAIN ST, MIAMI, FL 33101", "0 BLOCK MAIN ST, MIAMI, FL 33101"),
        ("050XX W SUPERIOR ST", "050XX W SUPERIOR ST"),
        ("12XX E 47TH ST", "12XX E 47TH ST"),
        ("1200 BLOCK OF MAIN ST", "1200 BLOCK OF MAIN ST"),
        ("SAN JUAN RD / EL CENTRO RD", "SAN JUAN RD / EL CENTRO RD"),
        ("I-80 & MADISON AVE", "I-80 & MADISON AVE"),
        ("On or near Shoreham-By-Sea (Station)", "On or near Shoreham-By-Sea (Station)"),
        ("1ST AVE", "1ST AVE"),
        ("KOKOMO DR", "KOKOMO DR"),
        ("4851", None),
        ("APT 3", None),
        ("   ", None),
        (None, None),
    ],
)
def test_hundred_block(address: str | None, block: str | None) -> None:
    assert hundred_block(address) == block


def test_hundred_block_never_keeps_the_house_number() -> None:
    for number in (1, 99, 100, 4851, 123456):
        block = hundred_block(f"{number} ELM ST APT 4") or ""
        assert str(number) not in block.split() or number % 100 == 0
        assert "APT" not in block


def test_portland_city_hall_from_oregon_state_plane_feet() -> None:
    # 1221 SW 4th Ave, Portland: EPSG:2913 is NAD83(HARN) / Oregon North (ft).
    lon, lat = to_wgs84(7643645.0, 681349.0, "EPSG:2913")
    assert lat == pytest.approx(45.5149, abs=1e-4)
    assert lon == pytest.approx(-122.6789, abs=1e-4)


def test_wgs84_is_passed_through() -> None:
    assert is_wgs84("EPSG:4326") and not is_wgs84("EPSG:2913")
    assert to_wgs84(-0.1, 51.5, "EPSG:4326") == (-0.1, 51.5)


def test_unknown_crs_is_a_clear_error() -> None:
    with pytest.raises(CRSError, match="unknown CRS 'EPSG:999999'.*EPSG code"):
        parse_crs("EPSG:999999")


def test_distance_to_extent() -> None:
    extent = (-0.12, 51.50, -0.07, 51.53)  # roughly the City of London
    assert distance_to_extent_m(-0.09, 51.515, extent) == 0
    one_degree_north = distance_to_extent_m(-0.09, 52.53, extent)
    assert one_degree_north == pytest.approx(111_300, rel=0.01)
