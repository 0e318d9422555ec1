"""Prometheus' own parser (prometheus_client) reading tally's /metrics.

    parse_metrics.py URL [TOKEN]   prints the samples as JSON: [{"name", "labels", "value"}]
"""

import json
import sys

import requests
from prometheus_client.parser import text_string_to_metric_families


def main():
    url = sys.argv[1]
    headers = {"Authorization": f"Bearer {sys.argv[2]}"} if len(sys.argv) > 2 else {}
    response = requests.get(url, headers=headers, timeout=10)
    response.raise_for_status()
    samples = []
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples.append({"family": family.name, "type": family.type, "name": sample.name, "labels": sample.labels, "value": sample.value})
    print(json.dumps(samples))


if __name__ == "__main__":
    main()
