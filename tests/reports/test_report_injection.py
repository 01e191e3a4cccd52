"""Issue 11 item 5: a title, tag, author or channel name that looks like a spreadsheet formula
stays text in the CSV and XLSX reports (OWASP CSV injection), in the CLI and the console."""

from __future__ import annotations

import csv
import io
from datetime import timedelta
from pathlib import Path

import pytest
from test_report import CONFIG, DAY, publish, run  # tests/reports is on sys.path

from kepubot.app import App
from kepubot.config import load_config
from kepubot.models import MetricSnapshot
from kepubot.queue import metrics as store
from kepubot.reports.formats import safe_text

HOSTILE_TITLE = '=HYPERLINK("http://x","click")'
HOSTILE_TAGS = ["+SUM(1,2)", "-2+3", "@cmd", "普通标签"]  # tags are stripped: no tab or CR


@pytest.fixture
def app(tmp_path: Path):
    (tmp_path / "kepubot.toml").write_text(CONFIG, encoding="utf-8")
    application = App(load_config(tmp_path / "kepubot.toml"))
    yield application
    application.close()


def _data(app: App) -> None:
    ids = publish(app, "ed", HOSTILE_TITLE, HOSTILE_TAGS, ["cms"], DAY + timedelta(days=1))
    store.store(
        app.store.conn(),
        ids["cms"],
        MetricSnapshot(views=10, likes=1),
        now=DAY,
        next_at=None,
        step=1,
    )


def _report(app: App, fmt: str, out: Path) -> None:
    code, _, err = run(
        app, "report", "--since", "2026-11-20", "--until", "2026-11-26", "--format", fmt,
        "--out", str(out),
    )  # fmt: skip
    assert code == 0, err


def test_safe_text_prefixes_every_formula_start() -> None:
    for start in ("=", "+", "-", "@", "\t", "\r"):
        assert safe_text(f"{start}x") == f"'{start}x"
    assert safe_text("科普 =1") == "科普 =1" and safe_text("") == ""


def test_csv_cells_that_start_like_formulas_are_neutralised(app: App, tmp_path: Path) -> None:
    import zipfile

    _data(app)
    out = tmp_path / "r.zip"
    _report(app, "csv", out)  # one CSV per section, in a zip (issue 16)
    with zipfile.ZipFile(out) as archive:
        text = "".join(
            archive.read(name).decode("utf-8-sig")
            for name in archive.namelist()
            if name.endswith(".csv")
        )
    rows = list(csv.reader(io.StringIO(text)))
    cells = [c for row in rows for c in row]
    assert "'" + HOSTILE_TITLE in cells
    for tag in HOSTILE_TAGS[:3]:
        assert "'" + tag in cells, tag
    assert "普通标签" in cells
    # no text cell anywhere starts a formula
    assert not [c for c in cells if c[:1] in ("=", "+", "@", "\t", "\r")]
    # text cells are quoted (embedded quotes doubled), numbers are not
    assert '"\'=HYPERLINK(""http://x"",""click"")"' in text


def test_xlsx_text_cells_are_strings_never_formulas(app: App, tmp_path: Path) -> None:
    from openpyxl import load_workbook

    _data(app)
    out = tmp_path / "r.xlsx"
    _report(app, "xlsx", out)
    book = load_workbook(out)
    seen = {}
    for sheet in book.worksheets:
        for row in sheet.iter_rows():
            for cell in row:
                assert cell.data_type != "f", (sheet.title, cell.coordinate, cell.value)
                if isinstance(cell.value, str):
                    seen[cell.value] = cell.data_type
    assert seen[HOSTILE_TITLE] == "s"
    for tag in HOSTILE_TAGS:
        assert seen[tag] == "s", tag
    # and no formula element was written at all
    import zipfile

    with zipfile.ZipFile(out) as archive:
        for name in archive.namelist():
            if name.startswith("xl/worksheets/"):
                assert b"<f>" not in archive.read(name) and b"<f " not in archive.read(name)
