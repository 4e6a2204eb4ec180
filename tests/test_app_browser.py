"""`s2v app` in a real headless browser (Debian's chromium + chromedriver, driven by selenium).

The app runs as the user would start it (`s2v app --port 0`, the shipped model); the browser
uploads a face photo and 3 s of speech from ../shared/data/real, waits for the result and checks
what the page shows: a video that plays, as long as the speech, with sound; the judge's AV offset
and LSE-C; the mouth strip; then a photo with no face gives the CLI's error line; then the Re-dub
tab re-dubs a GRID sentence. Nothing is fetched from anywhere but the app (the browser cannot resolve
any name, and every resource the page loaded is checked). SIGTERM stops the app and its temporary
folder goes.

Skips, saying why, where chromium, chromedriver, selenium or the app extra is missing (.ci/run
installs them where it can). The screenshots in the README are this test's:

    S2V_APP_SCREENSHOTS=docs python -m pytest -q tests/test_app_browser.py
"""

import os
import pathlib
import re
import shutil
import signal
import subprocess
import sys
import threading
import time

import pytest

from s2v_jax.app import client

SPEECH_SECONDS = 3.0
REPO = pathlib.Path(__file__).resolve().parents[1]


def _browser():
    """(chromium, chromedriver) paths, or skip saying what is missing."""
    for mod in ("selenium", "starlette", "uvicorn", "python_multipart"):
        pytest.importorskip(mod, reason=f"{mod} is not installed: pip install -e '.[app]' selenium")
    chrome = next((shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome") if shutil.which(n)),
                  None)
    driver = shutil.which("chromedriver")
    if chrome is None or driver is None:
        pytest.skip("no headless browser: install Debian's chromium and chromium-driver "
                    "(apt-get install chromium chromium-driver; .ci/run does so where it can)")
    return chrome, driver


@pytest.fixture(scope="module")
def browser():
    chrome, driver_path = _browser()
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = chrome
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1100,900",
                "--autoplay-policy=no-user-gesture-required", "--mute-audio", "--disable-gpu",
                "--no-first-run", "--disable-background-networking", "--disable-component-update",
                "--disable-sync", "--metrics-recording-only",
                # no name resolves: the page can reach nothing but the app's own address
                "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"):
        options.add_argument(arg)
    d = webdriver.Chrome(service=Service(driver_path), options=options)
    d.set_script_timeout(30)
    yield d
    d.quit()


class App:
    def __init__(self, proc, url, root):
        self.proc, self.url, self.root = proc, url, pathlib.Path(root)
        self.log = []


@pytest.fixture(scope="module")
def app(tmp_path_factory, browser):
    """`s2v app --port 0` in a subprocess (the shipped model), its URL and temporary folder."""
    tmp = tmp_path_factory.mktemp("app")
    proc = subprocess.Popen([sys.executable, "-m", "s2v_jax.cli", "app", "--port", "0", "--tmp-dir", str(tmp)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=str(tmp))
    lines = []
    found = threading.Event()
    info = {}

    def read():
        for line in proc.stdout:
            lines.append(line)
            m = re.search(r"serving on (http://\S+) .*temporary folder (\S+)\)", line)
            if m:
                info.update(url=m.group(1), root=m.group(2))
                found.set()
    threading.Thread(target=read, daemon=True).start()
    end = time.time() + 180
    while not found.wait(0.2):
        if proc.poll() is not None or time.time() > end:
            proc.kill()
            pytest.fail("s2v app did not start:\n" + "".join(lines))
    a = App(proc, info["url"], info["root"])
    a.log = lines
    yield a
    if proc.poll() is None:
        proc.kill()
        proc.wait()


@pytest.fixture(scope="module")
def speech(real_data, tmp_path_factory):
    """The first 3 s of a shared speech clip."""
    import soundfile

    wav, sr = soundfile.read(str(real_data / "audio" / "en_speech_8s_a.wav"))
    path = tmp_path_factory.mktemp("speech") / "speech_3s.wav"
    soundfile.write(str(path), wav[:int(SPEECH_SECONDS * sr)], sr)
    return path


def _wait(driver, script, timeout, what):
    """Polls a JavaScript expression until it is truthy; returns its value."""
    end = time.time() + timeout
    while True:
        value = driver.execute_script("return " + script)
        if value:
            return value
        if time.time() > end:
            errors = driver.execute_script(
                "return [...document.querySelectorAll('.error')].filter(e => !e.hidden)"
                ".map(e => e.textContent).join(' | ')")
            videos = driver.execute_script(
                "return [...document.querySelectorAll('video')].map(v => [v.id, v.src, v.readyState, "
                "v.networkState, v.error && v.error.message, v.currentTime, v.duration])")
            pytest.fail(f"timed out after {timeout} s waiting for {what}; page errors: {errors!r}; "
                        f"videos: {videos}")
        time.sleep(0.25)


def _upload(driver, field_id, paths):
    """Chooses files in a file input (replacing the earlier choice, as a person choosing again does)."""
    field = driver.find_element("id", field_id)
    driver.execute_script("arguments[0].value = ''", field)
    field.send_keys("\n".join(str(p) for p in paths))


def _check_result(driver, app, kind, tmp_path):
    """What the page shows for a finished job: a playable video with sound, of the speech's length,
    its download, the judge's numbers and the mouth strip."""
    from s2v_jax.media import video as video_lib

    v = f"document.getElementById('{kind}-player')"
    _wait(driver, f"{v} && {v}.readyState >= 1", 30, "the video's metadata")
    duration = driver.execute_script(f"return {v}.duration")
    assert abs(duration - SPEECH_SECONDS) <= 0.1, duration
    assert driver.execute_script(f"return {v}.error") is None
    # it plays, and the browser decodes its sound
    driver.execute_script(f"{v}.muted = true; {v}.play();")
    _wait(driver, f"{v}.currentTime > 0.5 && {v}.webkitAudioDecodedByteCount > 0", 30, "playback with sound")
    driver.execute_script(f"{v}.pause(); {v}.currentTime = 1.2;")
    _wait(driver, f"!{v}.seeking && {v}.readyState >= 2", 10, "the seek")
    # the download link serves the same file: an mp4 with a sound track, 25 fps, the speech's length
    href = driver.find_element("id", f"{kind}-download").get_attribute("href")
    assert href.startswith(app.url) and href.endswith("/video.mp4")
    local = client.fetch(app.url, href[len(app.url) - 1:], str(tmp_path / f"{kind}.mp4"))
    info = video_lib.probe(local)
    assert info.has_audio and abs(info.num_frames - 25 * SPEECH_SECONDS) <= 1, info
    # the judge's numbers
    offset = driver.find_element("id", f"{kind}-offset").text
    lse_c = driver.find_element("id", f"{kind}-lsec").text
    assert re.fullmatch(r"[+-]?\d+ frames?", offset), offset
    assert re.fullmatch(r"-?\d+\.\d{3}", lse_c), lse_c
    # the mouth strip
    strip = f"document.querySelector('#{kind}-strip img')"
    _wait(driver, f"{strip}.complete && {strip}.naturalWidth > 0", 10, "the mouth strip")
    assert not driver.find_element("id", f"{kind}-error").is_displayed()
    return {"offset": offset, "lse_c": lse_c}


def _watch_progress(driver, kind):
    """Records every text of the job's stage line and value of its bar (window.__s2vProgress)."""
    driver.execute_script("""
      const kind = arguments[0];
      window.__s2vProgress = [];
      new MutationObserver(() => {
        const s = document.getElementById(kind + '-stage'), b = document.getElementById(kind + '-progress');
        if (s && b) window.__s2vProgress.push([s.textContent, b.value]);
      }).observe(document.getElementById(kind + '-result'),
                 {subtree: true, childList: true, characterData: true, attributes: true});""", kind)


def _progress_seen(driver):
    """The stage lines shown while the job ran, and whether the bar moved between 0 and 1."""
    seen = driver.execute_script("return window.__s2vProgress")
    running = [t for t, v in seen if re.match(r"(face tracking|generation|encoding|judge)\b", t)]
    return running, any(0 < v < 1 for _, v in seen)


def _screenshot(driver, name):
    """docs/<name>.png when S2V_APP_SCREENSHOTS names a folder (the README's pictures)."""
    folder = os.environ.get("S2V_APP_SCREENSHOTS")
    if not folder:
        return
    from PIL import Image

    out = pathlib.Path(folder)
    if not out.is_absolute():
        out = REPO / out
    out.mkdir(parents=True, exist_ok=True)
    height = driver.execute_script("return document.documentElement.scrollHeight")
    driver.set_window_size(1100, min(2000, height + 140))  # 140: the headless window's own frame
    driver.execute_script("document.documentElement.style.overflow = 'hidden'")  # no scroll bar
    time.sleep(0.5)
    path = out / f"{name}.png"
    driver.save_screenshot(str(path))
    Image.open(path).convert("RGB").quantize(colors=192, method=Image.Quantize.MEDIANCUT).save(
        path, optimize=True)
    driver.execute_script("document.documentElement.style.overflow = ''")
    driver.set_window_size(1100, 900)


def _run_tab(d, app, tab: str, uploads, tmp_path):
    """Uploads the files of one tab, runs it, waits for its result (or its error line) and checks the
    result: (result, progress stages seen, whether the bar moved)."""
    for field, files in uploads.items():
        _upload(d, field, files)
    _watch_progress(d, tab)
    d.find_element("id", f"{tab}-run").click()
    _wait(d, f"/\\d/.test((document.getElementById('{tab}-lsec') || {{}}).textContent || '') || "
             f"!document.getElementById('{tab}-error').hidden", 180, f"the {tab} result")
    result = _check_result(d, app, tab, tmp_path)
    stages, moved = _progress_seen(d)  # the bar and its stage line while it ran
    result["stages"] = sorted({re.sub(r"\d+/", "k/", t) for t in stages})
    return result, stages, moved


@pytest.mark.shared_data
def test_the_page_makes_a_talking_video_and_redubs_one(browser, app, real_data, speech, tmp_path):
    t0 = time.time()
    d = browser
    d.get(app.url)
    assert d.title == "Speech2Vid"
    _wait(d, "document.getElementById('status').textContent === 'ready'", 180, "the model to load")
    t_ready = time.time() - t0

    # Photo tab: a photo and 3 s of speech -> the talking video. The photo: a frame of a GRID sentence
    # (CC BY 4.0, so the screenshot may be shown), not one of stills/ (third-party portraits)
    import cv2

    cap = cv2.VideoCapture(str(real_data / "corpus" / "grid_s1" / "srbb4n.mp4"))
    ok, frame = cap.read()
    cap.release()
    assert ok, "could not read a frame of grid_s1/srbb4n.mp4"
    cv2.imwrite(str(tmp_path / "grid_speaker.png"), frame)
    photo, stages, moved = _run_tab(d, app, "photo", {"photo-images": [tmp_path / "grid_speaker.png"],
                                                      "photo-audio": [speech]}, tmp_path)
    assert moved and any(re.match(r"generation \d+/75 frames", t) for t in stages), stages
    _screenshot(d, "app_photo")
    t_photo = time.time() - t0

    # a photo with no face: the CLI's one-line error, and no video
    _upload(d, "photo-images", [real_data / "edge_cases" / "no_face_coffee.png"])
    d.find_element("id", "photo-run").click()
    _wait(d, "!document.getElementById('photo-error').hidden", 60, "the error line")
    error = d.find_element("id", "photo-error").text
    assert error == ("error: no face found in no_face_coffee.png; use a photo with a clearly visible frontal "
                     "face (at least ~40 px across)"), error
    assert "\n" not in error and app.root.name not in error
    assert not d.find_element("id", "photo-out").is_displayed()

    # Re-dub tab: a GRID sentence (CC BY 4.0) and the same speech -> the re-dubbed video
    d.find_element("id", "tab-redub").click()
    assert d.find_element("id", "panel-redub").is_displayed() and not d.find_element("id", "panel-photo").is_displayed()
    redub, stages, moved = _run_tab(d, app, "redub", {"redub-video": [real_data / "corpus" / "grid_s1" / "bbaf3s.mp4"],
                                                      "redub-audio": [speech]}, tmp_path)
    assert moved and stages, stages
    _screenshot(d, "app_redub")

    # everything the page loaded came from the app
    resources = d.execute_script("return performance.getEntriesByType('resource').map(e => e.name)")
    assert resources and all(r.startswith(app.url) for r in resources), resources

    # SIGTERM: the app stops, and its temporary folder (results included) goes with it
    assert app.root.is_dir()
    app.proc.send_signal(signal.SIGTERM)
    assert app.proc.wait(60) == 143, "".join(app.log)
    assert not app.root.exists(), "the app left its temporary folder behind"
    print(f"\nmodel ready {t_ready:.1f} s; photo result at {t_photo:.1f} s ({photo}); "
          f"re-dub {redub}; total {time.time() - t0:.1f} s")
