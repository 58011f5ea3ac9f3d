#!/usr/bin/env python3
"""Makes the Superset dashboard bundle of examples/superset/ through Superset's own REST API:
four virtual datasets over journeydb's reports, a chart on each (a funnel from `funnel`, a
Sankey from `journey_paths`, models side by side from `attribute`, conversions by day), and a
dashboard holding them; then exports the dashboard and unpacks the export there. Run against
a Superset that has journeydb as a database (tests/python/superset.py sets one up):

    superset_bundle.py SUPERSET_URL DATABASE_ID OUT_DIR
"""
import io
import json
import sys
import uuid
import zipfile
from pathlib import Path

import requests

# name -> (SQL of the dataset, chart title, viz_type, form data, the query the chart asks for)
SUM = lambda column: {"expressionType": "SIMPLE", "column": {"column_name": column}, "aggregate": "SUM",  # noqa: E731
                      "label": column}
CHARTS = {
    "journey_funnel": (
        "SELECT step, step_name, users FROM funnel('page_view', 'form_submit', 'opportunity', 'purchase', "
        "window => INTERVAL '30 days')",
        "Funnel: page view to purchase (30 days)", "funnel",
        {"groupby": ["step_name"], "metric": SUM("users"), "sort_by_metric": True, "row_limit": 100,
         "show_labels": True, "label_type": "key_value_percent", "number_format": "SMART_NUMBER"},
        {"columns": ["step_name"], "metrics": [SUM("users")], "orderby": [[SUM("users"), False]], "row_limit": 100},
    ),
    "journey_sankey": (
        "SELECT depth, depth || '. ' || source AS source, (depth + 1) || '. ' || target AS target, users "
        "FROM journey_paths(max_steps => 4, top => 6)",
        "Paths: the first four steps (Sankey)", "sankey_v2",
        {"source": "source", "target": "target", "metric": SUM("users"), "row_limit": 1000},
        {"columns": ["source", "target"], "metrics": [SUM("users")], "orderby": [[SUM("users"), False]],
         "row_limit": 1000},
    ),
    "journey_attribution": (
        "SELECT model, channel, conversions, revenue FROM attribute('first_touch', 'last_touch', 'linear', "
        "'position_based', 'markov', conversion => 'purchase')",
        "Purchases by channel, five models side by side", "echarts_timeseries_bar",
        {"x_axis": "channel", "metrics": [SUM("conversions")], "groupby": ["model"], "row_limit": 1000,
         "orientation": "vertical", "show_legend": True, "x_axis_sort_asc": True},
        {"columns": [{"columnType": "BASE_AXIS", "sqlExpression": "channel", "label": "channel",
                      "expressionType": "SQL"}, "model"],
         "metrics": [SUM("conversions")], "orderby": [[SUM("conversions"), False]], "row_limit": 1000,
         "series_columns": ["model"]},
    ),
    "journey_conversions_by_day": (
        "SELECT event_time AS day, 1 AS conversions, value FROM journey.conversions",
        "Conversions by day (the session's time zone)", "echarts_timeseries_line",
        {"x_axis": "day", "time_grain_sqla": "P1D", "metrics": [SUM("conversions")], "groupby": [],
         "row_limit": 10000, "show_legend": False},
        {"columns": [{"timeGrain": "P1D", "columnType": "BASE_AXIS", "sqlExpression": "day", "label": "day",
                      "expressionType": "SQL"}],
         "metrics": [SUM("conversions")], "orderby": [], "row_limit": 10000},
    ),
}


def main():
    base, database, out = sys.argv[1], int(sys.argv[2]), Path(sys.argv[3])
    s = requests.Session()
    token = s.post(f"{base}/api/v1/security/login",
                   json={"username": "admin", "password": "admin", "provider": "db", "refresh": True}).json()
    s.headers["Authorization"] = "Bearer " + token["access_token"]
    dashboard = s.post(f"{base}/api/v1/dashboard/", json={"dashboard_title": "journeydb: journeys",
                                                           "slug": "journeydb-journeys"})
    dashboard.raise_for_status()
    dashboard_id = dashboard.json()["id"]
    layout = {"DASHBOARD_VERSION_KEY": "v2",
              "ROOT_ID": {"type": "ROOT", "id": "ROOT_ID", "children": ["GRID_ID"]},
              "GRID_ID": {"type": "GRID", "id": "GRID_ID", "children": [], "parents": ["ROOT_ID"]},
              "HEADER_ID": {"id": "HEADER_ID", "type": "HEADER", "meta": {"text": "journeydb: journeys"}}}
    for i, (name, (sql, title, viz, form, query)) in enumerate(CHARTS.items()):
        ds = s.post(f"{base}/api/v1/dataset/", json={"database": database, "schema": "public", "table_name": name,
                                                     "sql": sql})
        if ds.status_code != 201:
            raise SystemExit(f"dataset {name}: {ds.status_code} {ds.text}")
        ds_id = ds.json()["id"]
        params = dict(form, viz_type=viz, datasource=f"{ds_id}__table")
        context = {"datasource": {"id": ds_id, "type": "table"}, "force": False,
                   "queries": [dict(query, filters=[], extras={"having": "", "where": ""})],
                   "form_data": params, "result_format": "json", "result_type": "full"}
        chart = s.post(f"{base}/api/v1/chart/", json={
            "slice_name": title, "viz_type": viz, "datasource_id": ds_id, "datasource_type": "table",
            "params": json.dumps(params), "query_context": json.dumps(context), "dashboards": [dashboard_id]})
        if chart.status_code != 201:
            raise SystemExit(f"chart {name}: {chart.status_code} {chart.text}")
        chart_id = chart.json()["id"]
        chart_uuid = s.get(f"{base}/api/v1/chart/{chart_id}").json()["result"].get("uuid") or str(uuid.uuid4())
        row = f"ROW-{i // 2}"
        if row not in layout:
            layout[row] = {"type": "ROW", "id": row, "children": [], "parents": ["ROOT_ID", "GRID_ID"],
                           "meta": {"background": "BACKGROUND_TRANSPARENT"}}
            layout["GRID_ID"]["children"].append(row)
        key = f"CHART-{name}"
        layout[row]["children"].append(key)
        layout[key] = {"type": "CHART", "id": key, "children": [], "parents": ["ROOT_ID", "GRID_ID", row],
                       "meta": {"width": 6, "height": 60, "chartId": chart_id, "sliceName": title,
                                "uuid": chart_uuid}}
    put = s.put(f"{base}/api/v1/dashboard/{dashboard_id}", json={"position_json": json.dumps(layout)})
    put.raise_for_status()
    export = s.get(f"{base}/api/v1/dashboard/export/", params={"q": f"!({dashboard_id})"})
    export.raise_for_status()
    out.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(io.BytesIO(export.content)) as z:
        for member in z.namelist():
            # dashboard_export_<timestamp>/databases/journeydb.yaml -> databases/journeydb.yaml
            relative = Path(*Path(member).parts[1:])
            target = out / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(z.read(member))
            print(relative)


if __name__ == "__main__":
    main()
