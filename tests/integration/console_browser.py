#!/usr/bin/python3
"""The fleet console in a real browser: Debian's headless Chromium driven by
Selenium (chromedriver), against the console, gateway, broker and simulated
fleet that console_browser.sh started. The console's certificate is trusted
by its SPKI hash only. Screenshots go to ART (the build's test-artifacts).

Environment: ORIGIN, SPKI, PASSWORD, ART, IOTCTL, PKI, PROFILE, DEVICES."""
import json
import os
import subprocess
import sys
import time

from selenium import webdriver
from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import WebDriverWait

ORIGIN = os.environ["ORIGIN"]
ART = os.environ["ART"]
PAGE_WEIGHT_MAX = 300 * 1024
passes = 0


def ok(what):
    global passes
    passes += 1
    print("ok - " + what, flush=True)


def fail(what):
    print("FAIL: " + what, file=sys.stderr, flush=True)
    sys.exit(1)


def shot(driver, name):
    path = os.path.join(ART, name)
    driver.save_screenshot(path)
    print("screenshot: " + path, flush=True)


def wait(driver, seconds, cond, what):
    try:
        # The pages re-render their tables as data arrives: an element found
        # one moment may be replaced the next, which is a reason to look again.
        return WebDriverWait(driver, seconds, poll_frequency=0.2,
                             ignored_exceptions=(NoSuchElementException,
                                                 StaleElementReferenceException)).until(cond)
    except Exception as e:  # the timeout, with what was expected
        shot(driver, "failed.png")
        fail("%s (after %d s): %s" % (what, seconds, type(e).__name__))


def iotctl(*args):
    subprocess.run([os.environ["IOTCTL"], "--dir", os.environ["PKI"], *args], check=True,
                   stdout=subprocess.DEVNULL)


def page_weight(driver, path):
    """HTML + scripts + style sheets of a page, decoded bytes, as the browser
    loaded them (Resource Timing)."""
    driver.get(ORIGIN + path)
    wait(driver, 10, lambda d: d.execute_script("return document.readyState") == "complete",
         "page %s loaded" % path)
    time.sleep(0.5)
    return driver.execute_script("""
        const nav = performance.getEntriesByType('navigation')[0];
        let total = nav.decodedBodySize;
        for (const r of performance.getEntriesByType('resource'))
          if (r.initiatorType === 'script' || r.initiatorType === 'link') total += r.decodedBodySize;
        return total;""")


def main():
    opts = webdriver.ChromeOptions()
    opts.binary_location = "/usr/bin/chromium"
    for a in ("--headless", "--no-sandbox", "--disable-gpu", "--window-size=1280,900",
              "--user-data-dir=" + os.environ["PROFILE"],
              "--ignore-certificate-errors-spki-list=" + os.environ["SPKI"]):
        opts.add_argument(a)
    driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=opts)
    driver.set_page_load_timeout(20)
    try:
        run(driver)
    finally:
        driver.quit()
    print("%d passed, 0 failed" % passes)


def run(driver):
    # Refused without credentials.
    driver.get(ORIGIN + "/")
    wait(driver, 10, EC.url_to_be(ORIGIN + "/login"), "sent to /login without a session")
    ok("a page without a session is sent to /login")
    shot(driver, "01-login.png")
    driver.get(ORIGIN + "/api/v1/devices")
    body = driver.find_element(By.TAG_NAME, "body").text
    if '"unauthenticated"' not in body:
        fail("the API without a session: " + body)
    ok("the API without a session answers 401 unauthenticated")

    # A wrong password, then the right one, typed and submitted by keyboard.
    driver.get(ORIGIN + "/login")
    driver.find_element(By.ID, "operator").send_keys("alice")
    driver.find_element(By.ID, "password").send_keys("not-the-password-at-all", Keys.ENTER)
    wait(driver, 10, EC.text_to_be_present_in_element((By.ID, "login-error"), "wrong password"),
         "a wrong password is reported")
    ok("a wrong password is refused on the page")
    pw = driver.find_element(By.ID, "password")
    pw.clear()
    pw.send_keys(os.environ["PASSWORD"], Keys.ENTER)
    wait(driver, 10, EC.url_to_be(ORIGIN + "/"), "logged in")
    rows = wait(driver, 15, lambda d: [r for r in d.find_elements(
        By.CSS_SELECTOR, "#fleet-table tbody tr")] or None, "the fleet table")
    want = int(os.environ["DEVICES"])
    if len(rows) != want:
        fail("fleet table has %d rows, want %d" % (len(rows), want))
    ok("logged in: the fleet table shows the %d devices" % want)
    wait(driver, 15, lambda d: "online" in d.find_element(
        By.CSS_SELECTOR, "tr[data-device='sim-1']").text, "sim-1 online")
    ok("sim-1 is shown online")
    shot(driver, "02-fleet.png")

    # A revocation shows within seconds.
    iotctl("device", "revoke", "sim-2")
    t0 = time.time()
    wait(driver, 10, lambda d: d.find_element(
        By.CSS_SELECTOR, "tr[data-device='sim-2']").get_attribute("data-state") == "revoked",
        "sim-2 marked revoked")
    ok("sim-2 marked revoked %.1f s after iotctl device revoke" % (time.time() - t0))
    shot(driver, "03-revoked.png")

    # A live value changes.
    driver.get(ORIGIN + "/device?id=sim-1")
    first = wait(driver, 15, lambda d: d.find_element(By.ID, "latest-temperature").text or None,
                 "a temperature on sim-1's page")
    wait(driver, 15, lambda d: d.find_element(By.ID, "latest-temperature").text != first,
         "the temperature changes live")
    ok("sim-1's live temperature changed (%s -> %s)" %
       (first, driver.find_element(By.ID, "latest-temperature").text))
    time.sleep(2)  # a few more points on the plots
    shot(driver, "04-device.png")

    # Pause a rollout, find it in the audit log.
    driver.get(ORIGIN + "/rollouts")
    # Found and clicked in one step: the list may be drawn again in between.
    wait(driver, 10, lambda d: d.find_element(By.ID, "pause-r-2").click() or True, "pause button")
    wait(driver, 10, lambda d: d.find_element(
        By.CSS_SELECTOR, "section[data-rollout='r-2']").get_attribute("data-state") == "paused",
        "r-2 paused")
    ok("rollout r-2 paused from the page")
    shot(driver, "05-rollouts.png")
    driver.get(ORIGIN + "/audit")
    rows = wait(driver, 10, lambda d: [r.text for r in d.find_elements(
        By.CSS_SELECTOR, "#audit-table tbody tr")] or None, "audit table")
    found = [t for t in rows if "rollout.pause" in t and "r-2" in t and "alice" in t
             and t.rstrip().endswith("ok")]
    if len(found) != 1:
        fail("the pause is not in the audit log: " + " | ".join(rows))
    ok("the pause is in the audit log: " + found[0])
    shot(driver, "06-audit.png")

    driver.get(ORIGIN + "/events")
    wait(driver, 20, lambda d: d.find_elements(By.CSS_SELECTOR, "#events tbody tr") or None,
         "security events (the revoked sim-2 is refused)")
    ok("the security-event inbox lists events from the broker")
    shot(driver, "07-events.png")
    driver.get(ORIGIN + "/certificates")
    driver.find_element(By.ID, "days").send_keys(Keys.CONTROL, "a")
    driver.find_element(By.ID, "days").send_keys("400", Keys.TAB)
    wait(driver, 10, lambda d: d.find_elements(By.CSS_SELECTOR, "table tbody tr") or None,
         "certificates within 400 days")
    ok("certificates expiring within 400 days are listed")
    shot(driver, "08-certificates.png")

    # Page weight, measured in the browser.
    weights = {p: page_weight(driver, p) for p in
               ("/", "/device?id=sim-1", "/rollouts", "/events", "/audit", "/certificates")}
    heaviest = max(weights, key=weights.get)
    print("page weight: " + json.dumps(weights), flush=True)
    if weights[heaviest] >= PAGE_WEIGHT_MAX:
        fail("page %s weighs %d bytes" % (heaviest, weights[heaviest]))
    ok("heaviest page %s: %d bytes of HTML, JS and CSS (< 300 KB)" % (heaviest,
                                                                      weights[heaviest]))
    errors = [e for e in driver.get_log("browser") if e.get("level") == "SEVERE"
              and "Content Security Policy" in e.get("message", "")]
    if errors:
        fail("CSP violations: %s" % errors)
    ok("no Content-Security-Policy violation reported by the browser")

    # Log out: the session is gone.
    driver.get(ORIGIN + "/")
    wait(driver, 10, EC.element_to_be_clickable((By.ID, "logout")), "logout button").click()
    wait(driver, 10, EC.url_to_be(ORIGIN + "/login"), "back at /login after logout")
    driver.get(ORIGIN + "/api/v1/devices")
    if '"unauthenticated"' not in driver.find_element(By.TAG_NAME, "body").text:
        fail("the API still answers after logout")
    ok("after logout the API answers 401")


if __name__ == "__main__":
    main()
