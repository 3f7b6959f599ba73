# A trivial entry script for front-end benchmarks: the cost measured is HTTP and routing, not a model.
import json
import time


def init():
    pass


def run(raw_data):
    data = json.loads(raw_data)
    if data.get("sleep"):
        time.sleep(float(data["sleep"]))
    return [0]
