"""The architecture picture: real PNG and SVG files, drawn from the recorded resources and links."""

from __future__ import annotations

import struct
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from plan import diagram
from plan.offline import Evaluation, evaluate
from plan.topology import topology
from tests.mutations import changed, without

SVG = "{http://www.w3.org/2000/svg}"
XLINK_HREF = "{http://www.w3.org/1999/xlink}href"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def draw(ev: Evaluation, directory: Path) -> tuple[Path, Path]:
    svg, png = diagram.render(topology(ev), directory, "ha-webapp")
    return svg, png


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE, f"{path} is not a PNG"
    assert data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def svg_texts(path: Path) -> str:
    root = ET.parse(path).getroot()  # raises on anything that is not well-formed XML
    assert root.tag == f"{SVG}svg"
    return "\n".join(t.text or "" for t in root.iter(f"{SVG}text"))


def svg_edges(path: Path) -> set[str]:
    root = ET.parse(path).getroot()
    edges = (g for g in root.iter(f"{SVG}g") if g.get("class") == "edge")
    return {g.findtext(f"{SVG}title") or "" for g in edges}


@pytest.fixture(scope="module")
def prod_picture(previews: dict[str, Evaluation], tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return draw(previews["prod"], tmp_path_factory.mktemp("diagrams"))


def test_files_are_real_images(prod_picture: tuple[Path, Path]) -> None:
    svg, png = prod_picture
    assert (svg.name, png.name) == ("prod.svg", "prod.png")
    width, height = png_size(png)
    assert width > 600 and height > 1000
    assert svg_texts(svg)


def test_picture_shows_the_serving_path(prod_picture: tuple[Path, Path]) -> None:
    svg, _ = prod_picture
    texts = svg_texts(svg)
    for label in (
        "internet",
        "www.my-sample-domain.xyz",
        "lb-eip",
        "EIP 50 Mbps",
        "lb-slb PayByCLCU",
        "master cn-hangzhou-h, standby cn-hangzhou-i",
        "HTTPS :443, tls_cipher_policy_1_2_strict, health /health",
        "HTTP :80 redirects to :443",
        "VPC ha-webapp-prod-vpc, 10.30.0.0/16",
        "zone A: cn-hangzhou-h, VSwitch ha-webapp-prod-vsw-a 10.30.1.0/24",
        "zone B: cn-hangzhou-i, VSwitch ha-webapp-prod-vsw-b 10.30.2.0/24",
        "app-a1",
        "app-b2",
        "database-rds primary",
        "database-rds standby",
    ):
        assert label in texts, label
    edges = svg_edges(svg)
    path = {"internet->lb-dns", "lb-dns->lb-eip", "lb-eip->lb-slb"}
    to_servers = {f"lb-slb->app-{s}-1" for s in ("a1", "a2", "b1", "b2")}
    to_database = {f"app-{s}-1->database-rds-primary-cn-hangzhou-h" for s in ("a1", "a2", "b1", "b2")}
    assert path | to_servers | to_database <= edges


def test_svg_carries_its_icons(prod_picture: tuple[Path, Path]) -> None:
    svg, _ = prod_picture
    hrefs = [i.get(XLINK_HREF) or "" for i in ET.parse(svg).getroot().iter(f"{SVG}image")]
    assert len(hrefs) >= 9 and all(h.startswith("data:image/png;base64,") for h in hrefs)


def test_picture_shows_a_broken_topology_as_it_is(previews: dict[str, Evaluation], tmp_path: Path) -> None:
    broken = changed(without(previews["dev"], "app-b1-member"), "lb-slb", {"slaveZoneId": None})
    svg, _ = draw(broken, tmp_path)
    texts, edges = svg_texts(svg), svg_edges(svg)
    assert "NOT behind the load balancer" in texts and "master cn-hangzhou-h, NO standby zone" in texts
    assert "lb-slb->app-a1-1" in edges and "lb-slb->app-b1-1" not in edges


def test_many_servers_per_zone_stand_as_one_node(tmp_path: Path) -> None:
    ev = evaluate("dev", {"ha-webapp:app": '{"instanceType": "ecs.g7.large", "serversPerZone": 5}'}, preview=True)
    texts = svg_texts(draw(ev, tmp_path)[0])
    assert "app-a1 to app-a5" in texts and "5 servers, ecs.g7.large" in texts and "app-a3" not in texts
