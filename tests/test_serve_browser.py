"""The page of `fst serve` in a real headless Chromium: pick a style, upload a photo, get the painting back.

Needs Debian's ``chromium`` and ``chromium-driver`` (``.ci/run`` installs them with apt when missing) and
the ``selenium`` package (the test extra). ``FST_SERVE_SCREENSHOT=docs/serve.png`` also saves the
screenshot there (the README's picture).
"""

from __future__ import annotations

import base64
import io
import os
import select
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("fastapi", reason="fst serve needs the serve extra: pip install -e '.[serve]'")
webdriver = pytest.importorskip("selenium.webdriver", reason="the browser test needs selenium (the test extra)")
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.common.keys import Keys  # noqa: E402
from selenium.webdriver.support.select import Select  # noqa: E402
from selenium.webdriver.support.wait import WebDriverWait  # noqa: E402
from conftest import ctrl_c_default  # noqa: E402

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DRIVER = shutil.which("chromedriver")
pytestmark = [pytest.mark.slow,  # a real browser
              pytest.mark.skipif(not (CHROMIUM and DRIVER), reason="no Chromium here: apt-get install chromium "
                                 "chromium-driver (.ci/run does this in CI)")]

#: A public-domain photo the project ships (the val photos may not appear in docs/serve.png).
PHOTO = Path(__file__).resolve().parents[1] / "docs" / "gallery" / "astronaut.jpg"


@pytest.fixture(scope="module")
def server(tiny_style):
    """`fst serve` on a free loopback port, as a user starts it; stopped with Ctrl-C (SIGINT) at the end.

    It serves the shipped styles and ``tiny``, a test style with no thumbnail.
    """
    proc = subprocess.Popen([sys.executable, "-m", "fst.cli", "serve", "--port", "0"], stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"},
                            preexec_fn=ctrl_c_default)
    ready, _, _ = select.select([proc.stdout], [], [], 120)
    line = proc.stdout.readline() if ready else ""
    if "serving" not in line:
        proc.kill()
        pytest.fail(f"fst serve did not start: {line!r}")
    url = line.split(" at ", 1)[1].split()[0]
    assert url.startswith("http://127.0.0.1:") and "this machine only" in line
    yield url
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=30) == 0
    assert proc.stdout.read().strip() == "fst: stopped"


@pytest.fixture(scope="module")
def browser():
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ["--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1200,1700",
                "--disable-gpu", "--hide-scrollbars"]:
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=webdriver.ChromeService(executable_path=DRIVER))
    yield driver
    driver.quit()


def displayed_image(driver, element_id: str) -> Image.Image:
    """The pixels of an <img> as the page decoded them (drawn on a canvas, read back as PNG)."""
    data_url = driver.execute_script("""
        const img = document.getElementById(arguments[0]);
        const canvas = document.createElement("canvas");
        canvas.width = img.naturalWidth;
        canvas.height = img.naturalHeight;
        canvas.getContext("2d").drawImage(img, 0, 0);
        return canvas.toDataURL("image/png");""", element_id)
    return Image.open(io.BytesIO(base64.b64decode(data_url.split(",", 1)[1])))


def test_before_an_upload_nothing_empty_or_broken_shows(server, browser):
    browser.get(server)
    wait = WebDriverWait(browser, 60)
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, 'input[name="style"][value="tiny"]'))
    for element_id in ["original", "result", "download", "error", "progress"]:
        assert not browser.find_element(By.ID, element_id).is_displayed(), element_id
    # Every image on the page loads; a style without a thumbnail shows a placeholder, not a broken image.
    images = browser.find_elements(By.TAG_NAME, "img")
    wait.until(lambda d: all(d.execute_script("return arguments[0].complete", i) for i in images))
    broken = [i.get_attribute("alt") for i in images
              if i.is_displayed() and not browser.execute_script("return arguments[0].naturalWidth", i)]
    assert broken == []
    tiny = browser.find_element(By.CSS_SELECTOR, 'input[value="tiny"]').find_element(By.XPATH, "..")
    assert tiny.find_element(By.CLASS_NAME, "no-thumbnail").is_displayed() and "tiny" in tiny.text
    # Nothing the page asked for failed, the icon included.
    time.sleep(0.5)
    icon = browser.execute_script("return document.querySelector('link[rel=icon]').href")
    assert icon.endswith("/favicon.ico")
    assert [e["message"] for e in browser.get_log("browser") if e["level"] == "SEVERE"] == []


def test_the_page_stylizes_a_photo(server, browser, tmp_path):
    upload = tmp_path / "astronaut.jpg"
    Image.open(PHOTO).resize((640, 640), Image.Resampling.LANCZOS).save(upload, quality=95)
    browser.get(server)
    wait = WebDriverWait(browser, 60)
    cards = wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, 'input[name="style"]'))
    assert [c.get_attribute("value") for c in cards] == sorted(c.get_attribute("value") for c in cards)
    assert cards[0].is_selected()
    # Every shipped painting has a thumbnail; a test's own random style (FST_STYLES_DIR) has none.
    thumbs = browser.find_elements(By.CSS_SELECTOR, ".card img[src]")
    assert len(thumbs) >= 6
    wait.until(lambda d: all(d.execute_script("return arguments[0].naturalWidth", t) > 0 for t in thumbs))

    # The style is chosen with the keyboard: the radio group moves with the arrow keys.
    names = [c.get_attribute("value") for c in cards]
    target = names.index("starry_night")
    browser.execute_script("arguments[0].focus()", cards[0])
    for _ in range(target):
        browser.switch_to.active_element.send_keys(Keys.ARROW_RIGHT)
    assert cards[target].is_selected()

    browser.find_element(By.ID, "file").send_keys(str(upload))
    assert "astronaut.jpg" in browser.find_element(By.ID, "file-name").text
    Select(browser.find_element(By.ID, "max-size")).select_by_value("512")
    Select(browser.find_element(By.ID, "format")).select_by_value("png")
    browser.find_element(By.ID, "go").click()
    wait.until(lambda d: (img := d.find_element(By.ID, "result")).is_displayed()
               and d.execute_script("return arguments[0].complete && arguments[0].naturalWidth", img) > 0)

    shown = displayed_image(browser, "result")
    assert shown.size == (512, 512)
    photo = np.asarray(Image.open(upload).convert("RGB").resize((512, 512), Image.Resampling.LANCZOS), np.float32)
    assert np.abs(np.asarray(shown.convert("RGB"), np.float32) - photo).mean() > 20
    download = browser.find_element(By.ID, "download")
    assert download.is_displayed() and download.get_attribute("download") == "astronaut-starry_night.png"
    assert browser.find_element(By.ID, "error").get_attribute("hidden") is not None

    shot = tmp_path / "serve.png"
    browser.save_screenshot(str(shot))
    assert Image.open(shot).size[0] >= 1000
    if os.environ.get("FST_SERVE_SCREENSHOT"):
        shutil.copyfile(shot, os.environ["FST_SERVE_SCREENSHOT"])


def test_the_page_shows_the_servers_error_and_fits_a_phone(server, browser, tmp_path):
    not_image = tmp_path / "notes.jpg"
    not_image.write_text("shopping list: eggs, milk")
    browser.set_window_size(390, 844)
    browser.get(server)
    wait = WebDriverWait(browser, 60)
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, 'input[name="style"]'))
    browser.find_element(By.ID, "file").send_keys(str(not_image))
    browser.find_element(By.ID, "go").click()
    error = wait.until(lambda d: (e := d.find_element(By.ID, "error")).is_displayed() and e)
    assert error.text.startswith("That file is not an image this server can read")
    assert error.text.count("not an image") == 1 and error.text.count("JPEG") == 1, error.text
    assert browser.find_element(By.ID, "go").is_enabled()
    # The message is beside the photo's drop zone, and scrolled into view on a phone.
    assert browser.execute_script("return arguments[0].closest('fieldset').contains(document.getElementById('drop'))",
                                  error)
    wait.until(lambda d: d.execute_script(
        "const r = arguments[0].getBoundingClientRect(); return r.top >= 0 && r.bottom <= window.innerHeight", error))

    time.sleep(0.2)
    assert browser.execute_script("return document.documentElement.scrollWidth <= window.innerWidth")
    browser.save_screenshot(str(tmp_path / "phone.png"))
    if os.environ.get("FST_SERVE_SCREENSHOT"):
        shutil.copyfile(tmp_path / "phone.png", os.environ["FST_SERVE_SCREENSHOT"].replace(".png", "_phone.png"))
