"""The server is the base install + [serve]: building and starting the app loads no torch & co."""

import subprocess
import sys

HEAVY = ("torch", "lightning", "transformers", "datasets")


def test_serving_imports_without_heavy_packages():
    code = (
        "import sys\n"
        "from fastapi.testclient import TestClient\n"
        "from toolcast.serving import Client, ServeSettings, create_app\n"
        "from toolcast.serving.loading import find_loader\n"
        "class P:\n"
        "    name = 'p'\n"
        "    def predict(self, context, k=3):\n"
        "        return []\n"
        "with TestClient(create_app(ServeSettings(loader=lambda d: P(), load_in_background=False))) as c:\n"
        "    assert c.post('/v1/predict', json={'events': []}).status_code == 200\n"
        "try:\n"
        "    find_loader()\n"
        "except Exception:\n"
        "    pass\n"
        f"loaded = [m for m in {HEAVY!r} if m in sys.modules]\n"
        "assert not loaded, loaded\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
