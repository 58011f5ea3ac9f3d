"""Apache Superset against a journeydb server, unchanged (its PostgreSQL driver, psycopg2):
the database added and tested through Superset's REST API, schemas, tables and columns
reflected, SQL Lab running the cookbook, the dashboard bundle of examples/superset/ imported,
every chart's data from Superset's chart-data API compared with the same question asked over
the wire, and a headless Chromium screenshot of the dashboard.

    superset.py PG_PORT WORK_DIR ARTIFACTS_DIR
"""
import io
import json
import os
import socket
import subprocess
import sys
import time
import zipfile
from datetime import datetime, timezone
from pathlib import Path

import psycopg2
import requests

ROOT = Path(__file__).resolve().parent.parent.parent
pg_port, work, artifacts = int(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3])
work.mkdir(parents=True, exist_ok=True)
artifacts.mkdir(parents=True, exist_ok=True)
bin_dir = Path(sys.executable).parent
(work / "superset_config.py").write_text(
    'SECRET_KEY = "journeydb-tests-only-not-a-secret-0123456789"\n'
    f'SQLALCHEMY_DATABASE_URI = "sqlite:///{work}/superset.db"\n'
    "WTF_CSRF_ENABLED = False\nTALISMAN_ENABLED = False\n")
env = dict(os.environ, SUPERSET_HOME=str(work), SUPERSET_CONFIG_PATH=str(work / "superset_config.py"),
           FLASK_APP="superset")


def superset(*args):
    out = subprocess.run([str(bin_dir / "superset"), *args], env=env, capture_output=True, text=True, timeout=300)
    if out.returncode != 0:
        raise SystemExit(f"superset {args[0]} failed:\n{out.stdout[-3000:]}\n{out.stderr[-3000:]}")


superset("db", "upgrade")
superset("fab", "create-admin", "--username", "admin", "--firstname", "a", "--lastname", "b",
         "--email", "admin@example.com", "--password", "admin")
superset("init")
with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
log = open(work / "superset.log", "w")
server = subprocess.Popen([str(bin_dir / "superset"), "run", "-h", "127.0.0.1", "-p", str(port), "--with-threads"],
                          env=env, stdout=log, stderr=subprocess.STDOUT)
base = f"http://127.0.0.1:{port}"
wire = psycopg2.connect(host="127.0.0.1", port=pg_port, user="journey", dbname="journeydb")
wire.autocommit = True


def _number(text):
    try:
        return round(float(text), 6)
    except ValueError:
        return text


def ask(sql):
    with wire.cursor() as c:
        c.execute(sql)
        return c.fetchall()


try:
    for _ in range(120):
        try:
            if requests.get(f"{base}/health", timeout=2).status_code == 200:
                break
        except requests.ConnectionError:
            pass
        time.sleep(0.5)
    else:
        raise SystemExit("superset did not start")
    api = requests.Session()
    token = api.post(f"{base}/api/v1/security/login",
                     json={"username": "admin", "password": "admin", "provider": "db", "refresh": True}).json()
    api.headers["Authorization"] = "Bearer " + token["access_token"]
    uri = f"postgresql+psycopg2://journey@127.0.0.1:{pg_port}/journeydb"

    # The database, added and tested as a user does in Superset's form.
    r = api.post(f"{base}/api/v1/database/test_connection/", json={"sqlalchemy_uri": uri, "database_name": "x"})
    assert r.status_code == 200, r.text
    r = api.post(f"{base}/api/v1/database/", json={"sqlalchemy_uri": uri, "database_name": "journeydb (added)",
                                                  "expose_in_sqllab": True})
    assert r.status_code == 201, r.text
    db = r.json()["id"]
    print("ok the database is added and its connection tested")

    # Reflection: schemas, tables and views, columns with their types.
    schemas = api.get(f"{base}/api/v1/database/{db}/schemas/").json()["result"]
    assert {"public", "journey"} <= set(schemas), schemas
    tables = api.get(f"{base}/api/v1/database/{db}/tables/", params={"q": "(schema_name:public)"}).json()["result"]
    assert "events" in {t["value"] for t in tables}, tables
    views = api.get(f"{base}/api/v1/database/{db}/tables/", params={"q": "(schema_name:journey)"}).json()["result"]
    assert {"events", "conversions"} <= {t["value"] for t in views}, views
    meta = api.get(f"{base}/api/v1/database/{db}/table_metadata/", params={"name": "events", "schema": "public"})
    columns = {c["name"]: c["type"] for c in meta.json()["columns"]}
    assert columns.get("event_time", "").startswith("TIMESTAMP") and columns.get("revenue", "").startswith("NUMERIC"), \
        columns
    print(f"ok reflected {len(schemas)} schemas, {len(tables)} tables, {len(views)} journey views, "
          f"{len(columns)} columns of events")

    # SQL Lab runs the cookbook: the same columns and rows as the statement it ran gives over the
    # wire (SQL Lab reformats each statement and sets its own LIMIT, 1001 here, whatever the
    # statement's was).
    examples = sorted((ROOT / "sql" / "examples").glob("*.sql"))
    for example in examples:
        sql = example.read_text()
        r = api.post(f"{base}/api/v1/sqllab/execute/", json={"database_id": db, "sql": sql, "runAsync": False,
                                                             "schema": "public", "queryLimit": 1000})
        assert r.status_code == 200, (example.name, r.text[:1000])
        answer = r.json()
        with wire.cursor() as c:
            c.execute(answer["query"]["executedSql"])
            names = [d[0] for d in c.description]
            rows = c.fetchall()
        assert [col["column_name"] for col in answer["columns"]] == names, (example.name, answer["columns"], names)
        assert len(answer["data"]) == min(len(rows), 1000), (example.name, len(answer["data"]), len(rows))
        first = [str(v) for v in rows[0]] if rows else []
        shown = [str(answer["data"][0][n]) for n in names] if rows else []
        same = [a == b or a.replace(" ", "T") == b or _number(a) == _number(b) for a, b in zip(first, shown)]
        assert all(same), (example.name, first, shown)
    print(f"ok SQL Lab runs the {len(examples)} cookbook examples, answering as the wire does")

    # The bundle, pointed at this server, imported as a user imports a dashboard export.
    bundle = io.BytesIO()
    with zipfile.ZipFile(bundle, "w") as z:
        for path in sorted((ROOT / "examples" / "superset").rglob("*.yaml")):
            relative = path.relative_to(ROOT / "examples" / "superset")
            text = path.read_text()
            if relative.parts[0] == "databases":
                text = text.replace("@127.0.0.1:5433/", f"@127.0.0.1:{pg_port}/")
            z.writestr(f"journeydb_bundle/{relative}", text)
    r = api.post(f"{base}/api/v1/dashboard/import/",
                 files={"formData": ("journeydb.zip", bundle.getvalue(), "application/zip")},
                 data={"overwrite": "true", "passwords": json.dumps({"databases/journeydb.yaml": ""})})
    assert r.status_code == 200, r.text
    dashboard = api.get(f"{base}/api/v1/dashboard/journeydb-journeys").json()["result"]
    charts = api.get(f"{base}/api/v1/dashboard/{dashboard['id']}/charts").json()["result"]
    assert len(charts) == 4, charts
    print(f"ok the bundle imports: dashboard {dashboard['dashboard_title']!r} with {len(charts)} charts")

    # Every chart's data, from Superset's chart-data API, against the same question over the wire.
    def data(chart):
        r = api.get(f"{base}/api/v1/chart/{chart['id']}/data/", params={"format": "json", "type": "full"})
        assert r.status_code == 200, (chart["slice_name"], r.text[:1000])
        result = r.json()["result"][0]
        assert result["error"] is None and result["data"], (chart["slice_name"], result)
        return result["data"]

    by_name = {c["slice_name"]: c for c in charts}
    funnel = {d["step_name"]: d["users"] for d in data(by_name["Funnel: page view to purchase (30 days)"])}
    expected = dict(ask("SELECT step_name, users FROM funnel('page_view', 'form_submit', 'opportunity', 'purchase', "
                        "window => INTERVAL '30 days')"))
    assert funnel == expected and expected["purchase"] > 0, (funnel, expected)
    sankey = {(d["source"], d["target"]): d["users"] for d in data(by_name["Paths: the first four steps (Sankey)"])}
    expected = {(s, t): n for s, t, n in ask(
        "SELECT depth || '. ' || source, (depth + 1) || '. ' || target, sum(users) "
        "FROM journey_paths(max_steps => 4, top => 6) GROUP BY 1, 2")}
    assert sankey == expected and len(expected) > 10, (len(sankey), len(expected))
    bars = {(d["channel"], d["model"]): d["conversions"]
            for d in data(by_name["Purchases by channel, five models side by side"])}
    expected = {(c, m): float(n) for m, c, n in ask(
        "SELECT model, channel, conversions FROM attribute('first_touch', 'last_touch', 'linear', 'position_based', "
        "'markov', conversion => 'purchase')")}
    assert bars.keys() == expected.keys() and all(abs(bars[k] - expected[k]) < 1e-6 for k in expected), \
        (bars, expected)
    days = {datetime.fromtimestamp(d["day"] / 1000, timezone.utc).date(): d["conversions"]
            for d in data(by_name["Conversions by day (the session's time zone)"])}
    expected = {d.date(): n for d, n in ask(
        "SELECT date_trunc('day', event_time), count(*) FROM journey.conversions GROUP BY 1")}
    assert days == expected and len(expected) > 5, (days, expected)
    print("ok every chart's data is the answer over the wire (funnel, Sankey, models side by side, by day)")

    # The dashboard in headless Chromium, logged in through Superset's form.
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait
    options = webdriver.ChromeOptions()
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1400,1100",
                 "--disable-gpu", "--no-first-run"):
        options.add_argument(flag)
    options.binary_location = os.environ.get("CHROMIUM", "/usr/bin/chromium")
    driver = webdriver.Chrome(service=Service(os.environ.get("CHROMEDRIVER", "/usr/bin/chromedriver")),
                              options=options)
    try:
        wait = WebDriverWait(driver, 120)
        driver.get(f"{base}/login/")
        wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "input[name=username], #username"))
        driver.find_element(By.CSS_SELECTOR, "input[name=username], #username").send_keys("admin")
        driver.find_element(By.CSS_SELECTOR, "input[name=password], #password").send_keys("admin\n")
        wait.until(lambda d: "/login" not in d.current_url)
        driver.get(f"{base}/superset/dashboard/journeydb-journeys/?standalone=1")
        # Each chart drawn: ECharts draws on a canvas (the funnel, Sankey, bars and line are
        # all ECharts), with no loading spinner left.
        wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, ".dashboard-chart canvas, .chart-container canvas"))
                   >= 4 and not d.find_elements(By.CSS_SELECTOR, ".loading"))
        errors = driver.find_elements(By.CSS_SELECTOR, ".alert-danger, [data-test=error-message]")
        assert not errors, [e.text for e in errors]
        time.sleep(2)  # the charts' entry animations
        driver.save_screenshot(str(artifacts / "superset-dashboard.png"))
    finally:
        driver.quit()
    print("ok the dashboard renders its four charts in Chromium (superset-dashboard.png)")
    print("all ok")
finally:
    server.terminate()
    try:
        server.wait(timeout=20)
    except subprocess.TimeoutExpired:
        server.kill()
