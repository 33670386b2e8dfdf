"""Every name Corral derives from an accepted workload name is valid where it is used (issue 9: a
64-character job name once made the `corral.dev/job` label, and so the Service create, fail with
422 on every pass while the job held its devices). The limit of 63 is the binding one; this checks
that it is enough for all the others, for any name the schema accepts."""

from __future__ import annotations

import re

from hypothesis import given
from hypothesis import strategies as st

from corral.api.meta import DNS_SUBDOMAIN, MAX_NAME_LENGTH, check_label_value
from corral.api.names import (
    master_address,
    replica_pod_name,
    service_name,
    worker_hostname,
    worker_pod_name,
)

DNS_1035 = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
DNS_1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
SUBDOMAIN = re.compile(DNS_SUBDOMAIN)

ACCEPTED_NAMES = st.from_regex(SUBDOMAIN, fullmatch=True).filter(
    lambda name: len(name) <= MAX_NAME_LENGTH
) | st.sampled_from(["a", "9lives", "llama.v2", "x" * 63, "a-" * 31 + "b", "1." * 31 + "a"])


def _subdomain(name: str) -> bool:
    return len(name) <= 253 and SUBDOMAIN.fullmatch(name) is not None


@given(ACCEPTED_NAMES, st.integers(0, 99_999), st.integers(0, 10**12))
def test_every_derived_name_fits_where_it_is_used(name: str, index: int, attempt: int) -> None:
    check_label_value(name)  # corral.dev/job, corral.dev/pool, corral.dev/inference
    service = service_name(name)
    assert len(service) <= 63 and DNS_1035.fullmatch(service), service  # a Service name
    assert _subdomain(worker_pod_name(name, index, attempt))
    hostname = worker_hostname(index)
    assert len(hostname) <= 63 and DNS_1123_LABEL.fullmatch(hostname)
    assert len(master_address(name)) <= 253
    assert _subdomain(replica_pod_name(name, "0123abcd", index))  # revisions are 8 hex digits
