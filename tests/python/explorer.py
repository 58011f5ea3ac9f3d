"""The journey explorer in a real browser (headless Chromium driven by selenium): the demo's
funnel shows on opening, a funnel is built by clicking (a step added, one moved up), the Sankey
and the attribution views open, and every number drawn on the page is checked against the SQL
the page shows, run over the wire with psycopg. Screenshots go to the artifacts folder.

    explorer.py EXPLORER_PORT PG_PORT ARTIFACTS_DIR
"""
import os
import sys

import psycopg
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

http_port, pg_port, artifacts = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
os.makedirs(artifacts, exist_ok=True)
conn = psycopg.connect(f"host=127.0.0.1 port={pg_port} user=journey dbname=journeydb", autocommit=True)

options = webdriver.ChromeOptions()
for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1280,1000",
             "--disable-gpu", "--no-first-run", "--disable-extensions"):
    options.add_argument(flag)
options.binary_location = os.environ.get("CHROMIUM", "/usr/bin/chromium")
driver = webdriver.Chrome(service=Service(os.environ.get("CHROMEDRIVER", "/usr/bin/chromedriver")), options=options)
driver.set_page_load_timeout(60)
wait = WebDriverWait(driver, 90)


def ready(view):
    """Waits until `view` has drawn its answer (or its error), then returns the SQL it shows."""
    wait.until(lambda d: d.find_element(By.TAG_NAME, "body").get_attribute(f"data-{view}") in ("ready", "error"))
    state = driver.find_element(By.TAG_NAME, "body").get_attribute(f"data-{view}")
    if state != "ready":
        errors = [e.text for e in driver.find_elements(By.CSS_SELECTOR, "[data-testid=error]")]
        raise SystemExit(f"{view} failed: {errors}")
    section = driver.find_element(By.ID, view)
    return section.find_element(By.CSS_SELECTOR, "pre[data-testid=sql]").text.rstrip(";")


def reset(view):
    driver.execute_script(f"document.body.removeAttribute('data-{view}')")


def funnel_bars():
    bars = driver.find_elements(By.CSS_SELECTOR, "#funnel-chart rect[data-step]")
    return [(int(b.get_attribute("data-step")), int(b.get_attribute("data-users"))) for b in bars]


def check_funnel(sql, expect_steps):
    wire = [(r[0], r[2]) for r in conn.execute(sql).fetchall()]
    assert funnel_bars() == wire, (funnel_bars(), wire, sql)
    names = [r[1] for r in conn.execute(sql).fetchall()]
    assert names == expect_steps, (names, expect_steps)
    return wire


try:
    driver.get(f"http://127.0.0.1:{http_port}/")
    # On opening: the demo's funnel, no SQL typed.
    sql = ready("funnel")
    first = check_funnel(sql, ["page_view", "form_submit", "opportunity", "purchase"])
    assert first[0][1] > 0 and first[-1][1] > 0, first
    medians = [float(t.get_attribute("data-median-seconds"))
               for t in driver.find_elements(By.CSS_SELECTOR, "#funnel-chart text[data-median-seconds]")]
    wire = [float(r[0]) for r in conn.execute(f"SELECT median_seconds FROM ({sql}) f WHERE step > 1 AND median_seconds IS NOT NULL ORDER BY step")]
    assert medians == wire, (medians, wire)
    driver.save_screenshot(os.path.join(artifacts, "explorer-funnel.png"))
    print("ok the demo's funnel shows on opening:", first)

    # Built by clicking: 'opportunity' removed, 'email_click' added at the end and moved up to
    # second place with the arrows, the window widened.
    steps = driver.find_elements(By.CSS_SELECTOR, "#funnel-steps li")
    steps[2].find_element(By.CSS_SELECTOR, "button[title=remove]").click()
    driver.find_element(By.ID, "funnel-add").click()
    new = driver.find_elements(By.CSS_SELECTOR, "#funnel-steps li")[-1]
    new.find_element(By.CSS_SELECTOR, "input.event").send_keys("email_click")
    # Moved up twice: after 'page_view'.
    for _ in range(2):
        items = driver.find_elements(By.CSS_SELECTOR, "#funnel-steps li")
        position = [i.find_element(By.CSS_SELECTOR, "input.event").get_attribute("value") for i in items].index("email_click")
        items[position].find_element(By.CSS_SELECTOR, "button[title='move up']").click()
    order = [i.find_element(By.CSS_SELECTOR, "input.event").get_attribute("value")
             for i in driver.find_elements(By.CSS_SELECTOR, "#funnel-steps li")]
    assert order == ["page_view", "email_click", "form_submit", "purchase"], order
    window = driver.find_element(By.ID, "funnel-window")
    window.clear()
    window.send_keys("60")
    reset("funnel")
    driver.find_element(By.ID, "funnel-run").click()
    sql = ready("funnel")
    assert "'email_click', 'form_submit'" in sql and "INTERVAL '60 days'" in sql, sql
    built = check_funnel(sql, order)
    print("ok a funnel built by clicking, a step moved up, matches its SQL:", built)

    # The Sankey.
    driver.find_element(By.CSS_SELECTOR, "nav button[data-view=paths]").click()
    sql = ready("paths")
    links = driver.find_elements(By.CSS_SELECTOR, "#paths-chart path[data-users]")
    drawn = sorted((int(l.get_attribute("data-depth")), l.get_attribute("data-source"), l.get_attribute("data-target"),
                    int(l.get_attribute("data-users"))) for l in links)
    wire = sorted((r[0], r[1], r[2], r[3]) for r in conn.execute(sql).fetchall())
    assert drawn == wire and len(drawn) > 5, (drawn[:5], wire[:5])
    driver.save_screenshot(os.path.join(artifacts, "explorer-sankey.png"))
    print(f"ok the Sankey draws every edge of its SQL ({len(drawn)} edges)")

    # Attribution: models side by side.
    driver.find_element(By.CSS_SELECTOR, "nav button[data-view=attribution]").click()
    sql = ready("attribution")
    rects = driver.find_elements(By.CSS_SELECTOR, "#attr-chart rect[data-model]")
    drawn = {(r.get_attribute("data-model"), r.get_attribute("data-value")): float(r.get_attribute("data-conversions"))
             for r in rects}
    wire = {(r[0], r[1]): float(r[2]) for r in conn.execute(sql).fetchall()}
    missing = {k: v for k, v in wire.items() if abs(drawn.get(k, 0.0) - v) > 1e-6}
    assert not missing and len({m for m, _ in wire}) >= 4, (missing, sql)
    # The demo's ad spend is joined: each value's spend and ROAS per model, as the SQL answers
    # (the table shows 4 decimals; NULL as empty).
    assert "spend => 'ad_spend'" in sql, sql
    header = [th.text for th in driver.find_elements(By.CSS_SELECTOR, "[data-testid=roas-table] tr th")]
    shown = {}
    for tr in driver.find_elements(By.CSS_SELECTOR, "[data-testid=roas-table] tr")[1:]:
        cells = [td.text for td in tr.find_elements(By.TAG_NAME, "td")]
        for name, text in zip(header[2:], cells[2:]):
            shown[(name.removeprefix("ROAS "), cells[0])] = (cells[1], text)
    number = lambda text: None if text == "" else float(text.replace(",", ""))
    roas_rows = conn.execute(f"SELECT model, channel, spend, roas FROM ({sql}) a").fetchall()
    paid = 0
    for model, value, spend, roas in roas_rows:
        if spend is None:
            assert (model, value) not in shown, (model, value, "has no spend, and is shown")
            continue
        spend_text, roas_text = shown[(model, value)]
        assert abs(number(spend_text) - float(spend)) < 0.01, (model, value, spend_text, spend)
        assert (number(roas_text) is None) == (roas is None), (model, value, roas_text, roas)
        if roas is not None:
            assert abs(number(roas_text) - roas) < 0.00006, (model, value, roas_text, roas)
            paid += 1
    assert paid >= 3, roas_rows
    driver.save_screenshot(os.path.join(artifacts, "explorer-attribution.png"))
    driver.execute_script("document.querySelector('[data-testid=roas-table]').scrollIntoView()")
    driver.save_screenshot(os.path.join(artifacts, "explorer-roas.png"))
    print(f"ok attribution draws {len({m for m, _ in wire})} models side by side as its SQL answers, "
          f"with ROAS for {paid} model and value pairs")

    # One person's journey.
    driver.find_element(By.CSS_SELECTOR, "nav button[data-view=person]").click()
    sql = ready("person")
    rows = driver.find_elements(By.CSS_SELECTOR, "#person-table tr")
    assert len(rows) - 1 == len(conn.execute(sql).fetchall()), sql
    print(f"ok one person's timeline lists {len(rows) - 1} events")

    # A bad step: the error with its SQLSTATE, on the page.
    driver.find_element(By.CSS_SELECTOR, "nav button[data-view=funnel]").click()
    first_input = driver.find_elements(By.CSS_SELECTOR, "#funnel-steps li input.event")[0]
    first_input.clear()
    first_input.send_keys("no_such_column = 1")
    reset("funnel")
    driver.find_element(By.ID, "funnel-run").click()
    wait.until(lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-funnel") == "error")
    text = driver.find_element(By.CSS_SELECTOR, "#funnel-chart [data-testid=error]").text
    assert text.startswith("ERROR 42703"), text
    print("ok an error shows with its SQLSTATE:", text.splitlines()[0])
    print("all ok")
finally:
    driver.quit()
