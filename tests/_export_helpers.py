"""Fixtures of the export tests: a small stacked workspace with sites, recording times and predictions,
and offline Camtrap DP validation with frictionless against the copies of the standard in tests/standards.

The workspace is tests/_stack_helpers.py's (240 labelled + 30 unlabelled synthetic videos, one saved
stack), copied, with its videos spread over three sites at hand-made recording times and every
video predicted (``jungle predict --videos all``).
"""

from __future__ import annotations

import functools
import http.server
import json
import shutil
import threading
from datetime import datetime, timedelta
from pathlib import Path

from jungle.store.db import connect
from jungle.store.workspace import Workspace

STANDARDS = Path(__file__).resolve().parent / "standards"  # Camtrap DP 1.0.2 and Data Package v1 (media/LICENSES.md)
OFFICIAL = "https://raw.githubusercontent.com/tdwg/camtrap-dp/1.0.2/"
SITES = ("cam_a", "cam_b", "cam_c")
START = datetime(2026, 3, 1, 6, 0, 0)


def _place_videos(ws: Workspace) -> None:
    """Site = video number mod 3, in a collection folder (``/data/collection/<site>/``, ingested from
    ``/data/collection``); clips 15 s long, in bursts of three 20 s apart, bursts 10 min apart."""
    with connect(ws) as con:
        ids = [r[0] for r in con.execute("SELECT video_id FROM videos ORDER BY path").fetchall()]
        for n, video_id in enumerate(ids):
            site = SITES[n % 3]
            k = n // 3
            when = START + timedelta(minutes=10 * (k // 3), seconds=35 * (k % 3), microseconds=250000)
            relpath = f"{site}/clip{n:05d}.mp4"
            con.execute("UPDATE videos SET site = ?, path = ?, relpath = ?, captured_at = ?, utc_offset_minutes = 0, "
                        "time_source = 'container', duration = 15.0, fps = 15.0, frames = 225, width = 640, "
                        "height = 360 WHERE video_id = ?",
                        [site, f"/data/collection/{relpath}", relpath, when, video_id])


def build_export_workspace(stacked, root: Path):
    """(StackWorkspace, model id, Workspace): a copy of the stacked workspace at ``root`` with sites and
    times, every video predicted. The session fixture ``exported`` (conftest.py) builds it once; do not
    change it: copy it with :func:`copy_workspace`."""
    from jungle.meta.predict import predict

    sw, result = stacked
    ws = copy_workspace(sw.workspace, root)
    _place_videos(ws)
    predict(ws, videos="all")
    return sw, result.model_id, ws


def copy_workspace(ws: Workspace, root: Path) -> Workspace:
    shutil.copytree(ws.root, root)
    return Workspace.resolve(root)


def write_deployments(path: Path, sites=SITES) -> Path:
    lines = ["site,latitude,longitude,cameraModel,coordinateUncertainty"]
    lines += [f"{site},{-1.5 + i * 0.01:.3f},{11.2 + i * 0.02:.3f},Bushnell-TrophyCam,30"
              for i, site in enumerate(sites)]
    path.write_text("\n".join(lines) + "\n")
    return path


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def validate_package(package_dir: Path, work: Path):
    """frictionless's report on the package, validated offline against the local Camtrap DP 1.0.2
    copies: the standards folder is served on 127.0.0.1, the profile's two remote ``$ref``s point
    at local copies, and the package's official URLs at the served folder (as the standard's own CI
    does)."""
    import frictionless

    served = work / "served"
    shutil.copytree(STANDARDS, served)
    shutil.copy(Path(frictionless.__file__).parent / "assets" / "profiles" / "geojson.json", served / "geojson.json")
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=str(served)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        base = f"http://127.0.0.1:{server.server_address[1]}/"
        profile = served / "camtrap-dp-1.0.2" / "camtrap-dp-profile.json"
        profile.write_text(profile.read_text()
                           .replace("https://specs.frictionlessdata.io/schemas/data-package.json",
                                    base + "frictionless-1.0/data-package.json")
                           .replace("http://json.schemastore.org/geojson.json", base + "geojson.json"))
        local = work / "package"
        shutil.copytree(package_dir, local)
        descriptor = local / "datapackage.json"
        text = descriptor.read_text()
        assert OFFICIAL in text
        descriptor.write_text(text.replace(OFFICIAL, base + "camtrap-dp-1.0.2/"))
        return frictionless.validate(str(descriptor))
    finally:
        server.shutdown()
        server.server_close()


def errors_of(report) -> list:
    return report.flatten(["type", "note"])


def read_json(path: Path) -> dict:
    return json.loads(Path(path).read_text())
