"""The explorer over TLS with users, in a real browser (headless Chromium driven by selenium):
the page asks for a login; a wrong password shows 28P01 on the form; the right one (the same
user and password as psql's) shows the demo's funnel, whose bars are checked against the SQL
the page shows, run over the wire over TLS with the same password. The session cookie is
Secure and HttpOnly. An HTTPS client that checks the certificate gets the page, and 401 from a
view without the cookie. A screenshot of the login goes to the artifacts folder.

    explorer_login.py EXPLORER_PORT PG_PORT CERT_PEM ARTIFACTS_DIR
"""
import json
import os
import ssl
import sys
import time
import urllib.error
import urllib.request

import psycopg
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

http_port, pg_port, cert, artifacts = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
os.makedirs(artifacts, exist_ok=True)
base = f"https://127.0.0.1:{http_port}"

# An HTTPS client that checks the certificate (the test's own, trusted here as its CA).
context = ssl.create_default_context(cafile=cert)
started = time.monotonic()
page = urllib.request.urlopen(base + "/", context=context, timeout=30).read().decode()
assert 'id="login"' in page
# The test holds a silent connection open meanwhile: its handshake (up to 10 s) waits alone.
assert time.monotonic() - started < 5, f"the page took {time.monotonic() - started:.1f} s"
try:
    urllib.request.urlopen(base + "/api/meta", context=context, timeout=30)
    raise SystemExit("a view answered without a login")
except urllib.error.HTTPError as e:
    assert e.code == 401, e.code
    assert json.load(e)["error"]["sqlstate"] == "28000"
print("ok HTTPS with the certificate checked: the page, and 401 without a login")

# Without trusting the certificate, the client refuses it: the explorer is really TLS.
try:
    urllib.request.urlopen(base + "/", context=ssl.create_default_context(), timeout=30)
    raise SystemExit("an unknown certificate was accepted")
except urllib.error.URLError as e:
    assert "CERTIFICATE_VERIFY_FAILED" in str(e), e
print("ok an unknown certificate is refused by a checking client")

conn = psycopg.connect(f"host=127.0.0.1 port={pg_port} user=analyst password='s3cret pass' dbname=journeydb "
                       "sslmode=require", autocommit=True)

options = webdriver.ChromeOptions()
for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1280,1000",
             "--disable-gpu", "--no-first-run", "--disable-extensions"):
    options.add_argument(flag)
# The test's self-signed certificate: the browser is told to accept it.
options.accept_insecure_certs = True
options.binary_location = os.environ.get("CHROMIUM", "/usr/bin/chromium")
driver = webdriver.Chrome(service=Service(os.environ.get("CHROMEDRIVER", "/usr/bin/chromedriver")), options=options)
driver.set_page_load_timeout(60)
wait = WebDriverWait(driver, 90)

try:
    driver.get(base + "/")
    wait.until(lambda d: d.find_element(By.ID, "login").is_displayed())
    driver.find_element(By.ID, "login-user").send_keys("analyst")
    driver.find_element(By.ID, "login-password").send_keys("wrong")
    driver.find_element(By.ID, "login-run").click()
    wait.until(lambda d: d.find_element(By.ID, "login-error").text)
    error = driver.find_element(By.ID, "login-error").text
    assert "28P01" in error and "analyst" in error, error
    driver.save_screenshot(os.path.join(artifacts, "explorer-login.png"))
    print("ok a wrong password shows on the form:", error)

    password = driver.find_element(By.ID, "login-password")
    password.clear()
    password.send_keys("s3cret pass")
    driver.find_element(By.ID, "login-run").click()
    # The login reloads the page: wait on the new page's body, whatever the old one's became.
    state = "return document.body ? document.body.getAttribute('data-funnel') : null"
    wait.until(lambda d: d.execute_script(state) in ("ready", "error"))
    body = driver.find_element(By.TAG_NAME, "body")
    assert body.get_attribute("data-funnel") == "ready", [e.text for e in driver.find_elements(By.CSS_SELECTOR, "[data-testid=error]")]
    assert not driver.find_element(By.ID, "login").is_displayed()
    sql = driver.find_element(By.ID, "funnel").find_element(By.CSS_SELECTOR, "pre[data-testid=sql]").text.rstrip(";")
    bars = [(int(b.get_attribute("data-step")), int(b.get_attribute("data-users")))
            for b in driver.find_elements(By.CSS_SELECTOR, "#funnel-chart rect[data-step]")]
    wire = [(r[0], r[2]) for r in conn.execute(sql).fetchall()]
    assert bars == wire and bars[0][1] > 0, (bars, wire)
    print("ok after the login the demo's funnel shows, as its SQL answers over TLS:", bars)

    cookies = {c["name"]: c for c in driver.get_cookies()}
    cookie = cookies["journeydb_explorer"]
    assert cookie["secure"] and cookie["httpOnly"] and cookie.get("sameSite") == "Strict", cookie
    print("ok the session cookie is Secure, HttpOnly and SameSite=Strict")
finally:
    driver.quit()
    conn.close()
print("all ok")
