"""`corral plan` never tracebacks (issue 9, §5): every hostile input file is exit status 2 and
one line on stderr naming the file (and the field, where there is one)."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.mutations import mutated

from corral.cli import main
from corral.commands.common import MAX_FILE_BYTES
from corral.fleet.testing import job, node, pod, pool

Files = dict[str, Path]


def dump(*documents: Any) -> str:
    return yaml.safe_dump_all(documents, sort_keys=False)


def a_node(**changes: Any) -> dict[str, Any]:
    document = node("h1").gpus(8).obj()
    for dotted, value in changes.items():
        target = document
        *parents, leaf = dotted.split("__")
        for key in parents:
            target = target.setdefault(key, {})
        target[leaf] = value
    return document


LAUGHS = "a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]\n" for i in range(1, 9)
)

# (id, which file, its contents (text, bytes, or a callable making the path), fragments of stderr)
CASES: list[tuple[str, str, Any, tuple[str, ...]]] = [
    ("latin-1", "nodes", "metadata: {name: caf\xe9}".encode("latin-1"), ("not UTF-8 text", "0xe9")),
    ("binary", "nodes", b"\x00\x01\x02\x80", ("not UTF-8 text",)),
    ("deep-flow", "nodes", "a: " + "[" * 5000 + "]" * 5000, ("invalid YAML", "nesting depth")),
    ("deep-block", "nodes", "".join("  " * i + f"k{i}:\n" for i in range(1500)), ("invalid YAML",)),
    ("deep-200", "nodes", "kind: Node\nspec: " + "[" * 200 + "]" * 200, ("nested deeper than 100",)),
    ("int-5000-digits", "nodes", "kind: Node\nmetadata: {name: x}\nn: " + "9" * 5000, ("an integer of 5000 digits",)),
    ("int-in-job", "job", dump(job("j").dict()).replace("workers: 1", "workers: " + "9" * 4400), ("an integer of 4400 digits",)),
    ("kind-number", "nodes", "kind: 5\nmetadata: {name: x}", ("document 1 is a 5, expected Node",)),
    ("kind-list-with-items", "nodes", "kind: [a]\nitems: []", ("document 1 is a ['a'], expected Node",)),
    ("job-kind-list", "job", "kind: [TrainingJob]\napiVersion: corral.dev/v1alpha1", ("kind: expected TrainingJob",)),
    ("quantity-nan", "nodes", dump(a_node(status__allocatable={"cpu": float("nan")})), ("Node h1: status.allocatable[cpu]: nan is not a quantity",)),
    ("quantity-inf", "nodes", dump(a_node(status__allocatable={"memory": float("inf")})), ("status.allocatable[memory]: inf is not a quantity",)),
    ("quantity-exponent", "nodes", dump(a_node(status__allocatable={"nvidia.com/gpu": "1e999999999"})), ("status.allocatable[nvidia.com/gpu]: '1e999999999' is not a quantity",)),
    ("quantity-2^63", "nodes", dump(a_node(status__capacity={"cpu": 2**63})), ("status.capacity[cpu]: the number is too large",)),
    ("job-quantity", "job", dump(job("j").requests(cpu="1e5000").dict()), ("spec.template.spec.containers[0].resources.requests.cpu: '1e5000' is not a quantity",)),
    ("empty-node-name", "nodes", dump(a_node(metadata={"name": ""})), ("Node (document 1): metadata.name: required",)),
    ("empty-job-name", "job", dump({**job("j").dict(), "metadata": {"name": ""}}), ("metadata.name: must have at least 1",)),
    ("empty-pool-name", "pools", dump({**pool("p").dict(), "metadata": {"name": ""}}), ("metadata.name: must have at least 1",)),
    ("conditions-number", "nodes", dump(a_node(status__conditions=5)), ("Node h1: status.conditions: must be a list",)),
    ("condition-string", "nodes", dump(a_node(status__conditions=["Ready"])), ("status.conditions[0]: must be an object",)),
    ("taints-map", "nodes", dump(a_node(spec__taints={"key": "a"})), ("Node h1: spec.taints: must be a list",)),
    ("taint-effect", "nodes", dump(a_node(spec__taints=[{"key": "a", "effect": 7}])), ("spec.taints[0].effect: must be a string",)),
    ("node-metadata-list", "nodes", dump({**a_node(), "metadata": ["h1"]}), ("document 1: metadata: must be an object",)),
    ("pool-metadata-list", "pools", dump({**pool("p").dict(), "metadata": ["p"]}), ("document 1: metadata: must be an object",)),
    ("job-metadata-list", "job", dump({**job("j").dict(), "metadata": ["j"]}), ("metadata: must be an object",)),
    ("label-number", "nodes", dump(a_node(metadata={"name": "h1", "labels": {"rack": 1}})), ("metadata.labels[rack]: must be a string",)),
    ("duplicate-nodes", "nodes", dump(a_node(), a_node()), ("Node h1 is given twice (documents 1 and 2)",)),
    ("duplicate-pools", "pools", dump(pool("p").dict(), pool("p").dict()), ("GPUPool p is given twice",)),
    ("duplicate-pods", "pods", dump(pod("p").obj(), pod("p").obj()), ("Pod default/p is given twice",)),
    ("pod-containers-map", "pods", dump({**pod("p").obj(), "spec": {"containers": {"a": 1}}}), ("Pod default/p: spec.containers: must be a list",)),
    ("aliases", "nodes", "kind: Node\nmetadata: {name: x}\nstatus:\n  " + LAUGHS.replace("\n", "\n  "), ("expands to more than",)),
    ("unhashable-key", "nodes", "? [a]\n: b\n", ("invalid YAML",)),
    ("directory", "nodes", lambda tmp: tmp, ("not a regular file",)),
    ("fifo", "nodes", lambda tmp: _fifo(tmp / "fifo"), ("not a regular file",)),
    ("dev-zero", "nodes", lambda tmp: Path("/dev/zero"), ("not a regular file",)),
    ("too-large", "nodes", lambda tmp: _sparse(tmp / "huge.yaml", MAX_FILE_BYTES + 1), ("more than the",)),
    ("newline-in-value", "nodes", dump(a_node(metadata={"name": "h1", "labels": {"a": "x\ny"}})), ("metadata.labels[a]",)),
]  # fmt: skip


def _fifo(path: Path) -> Path:
    os.mkfifo(path)
    return path


def _sparse(path: Path, size: int) -> Path:
    with open(path, "wb") as handle:
        handle.truncate(size)
    return path


@pytest.fixture
def files(tmp_path: Path) -> Files:
    return valid_files(tmp_path)


def valid_files(tmp_path: Path) -> Files:
    paths = {
        "nodes": tmp_path / "nodes.yaml",
        "job": tmp_path / "job.yaml",
        "pools": tmp_path / "pools.yaml",
        "pods": tmp_path / "pods.yaml",
    }
    paths["nodes"].write_text(dump(node("h1").gpus(8).obj(), node("h2").gpus(8).obj()))
    paths["job"].write_text(dump(job("j").workers(1).gpus(8).dict()))
    paths["pools"].write_text(dump(pool("p").dict()))
    paths["pods"].write_text(dump(pod("p").on("h1").gpus(1).obj()))
    return paths


def run_plan(files: Files, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    status = main(
        ["plan", "--nodes", str(files["nodes"]), "--job", str(files["job"]),
         "--pools", str(files["pools"]), "--pods", str(files["pods"])]
    )  # fmt: skip
    out, err = capsys.readouterr()
    return status, out, err


def test_the_valid_files_plan(files: Files, capsys: pytest.CaptureFixture[str]) -> None:
    assert run_plan(files, capsys)[0] == 0


@pytest.mark.parametrize(
    ("which", "contents", "fragments"),
    [
        pytest.param(which, contents, fragments, id=case)
        for case, which, contents, fragments in CASES
    ],
)
def test_hostile_file_is_one_line_exit_2(
    files: Files,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    which: str,
    contents: str | bytes | Callable[[Path], Path],
    fragments: tuple[str, ...],
) -> None:
    if callable(contents):
        files[which] = contents(tmp_path)
    elif isinstance(contents, bytes):
        files[which].write_bytes(contents)
    else:
        files[which].write_text(contents)
    started = time.perf_counter()
    status, out, err = run_plan(files, capsys)
    assert (status, out) == (2, ""), err
    assert err.count("\n") == 1, err
    assert str(files[which]) in err
    for fragment in fragments:
        assert fragment in err, err
    assert time.perf_counter() - started < 10


def test_yaml_is_read_with_libyaml() -> None:
    """The pure-Python loader took 16 s for a 5.6 MB node list (bench/plan_load.py measures)."""
    from corral.commands.common import _Loader

    assert yaml.__with_libyaml__
    assert issubclass(_Loader, yaml.CSafeLoader)


# -- fuzzing ------------------------------------------------------------------------------------

VALID = {
    "nodes": [node("h1").gpus(8).taint("t").obj(), node("h2").gpus(8).obj()],
    "job": [job("j").workers(2).gpus(8).tolerate("t").requests(cpu="1").dict()],
    "pools": [pool("p").dict()],
    "pods": [pod("p").on("h1").gpus(1).obj()],
}


@settings(
    max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    st.sampled_from(sorted(VALID)).flatmap(
        lambda which: st.tuples(st.just(which), mutated({"items": VALID[which]}, max_changes=4))
    ),
    st.booleans(),
)
def test_fuzzed_files_never_traceback(
    files: Files,
    capsys: pytest.CaptureFixture[str],
    change: tuple[str, dict[str, Any]],
    as_json: bool,
) -> None:
    files = valid_files(Path(files["nodes"]).parent)  # fresh: the fixture outlives one example
    which, document = change
    items = document.get("items")
    documents = items if isinstance(items, list) else [document]
    try:
        text = (
            json.dumps(documents[0] if len(documents) == 1 else documents)
            if as_json
            else yaml.safe_dump_all(documents)
        )
    except (ValueError, RecursionError, yaml.YAMLError):
        return  # not representable in this format
    files[which].write_text(text)
    status, out, err = run_plan(files, capsys)
    assert status in (0, 2, 3), err
    if status == 2:
        assert out == "" and err.count("\n") == 1 and str(files[which]) in err, err
