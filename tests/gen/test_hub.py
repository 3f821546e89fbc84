"""Models by hub id: a cached snapshot loads offline as the same model as its folder; an
unreachable hub is one line, in seconds, with nothing left behind. Nothing is downloaded."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from memgrid.core.errors import InputError, UnavailableError
from memgrid.core.generation.loading import find_model, resolve_device
from memgrid.core.generation.weights import model_key, weights_fingerprint
from memgrid.core.hub import HubUnreachableError, hub_file, resolve_snapshot
from memgrid.tui.cli import app
from memgrid.tui.services.project import open_project
from tests.gen.test_cli_generate import generate_args, invoke, write_prompts

HUB_ID = "stable-diffusion-v1-5/stable-diffusion-v1-5"
COMMIT = "0123456789abcdef0123456789abcdef01234567"


@pytest.fixture
def empty_hub(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """HF_HUB_OFFLINE=1 and an empty HF_HOME, as on a compute node that was never prepared."""
    home = tmp_path / "hf-home"
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(home))
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    return home


def test_an_unreachable_hub_is_one_fast_line_that_leaves_nothing(
    tmp_path: Path, runner: CliRunner, empty_hub: Path
) -> None:
    prompts = write_prompts(tmp_path)
    project = tmp_path / "project"
    before = sorted(tmp_path.rglob("*"))
    started = time.monotonic()
    result = runner.invoke(
        app, ["generate", "--model", HUB_ID, "--project", str(project), "--prompts", str(prompts)]
    )
    elapsed = time.monotonic() - started
    assert result.exit_code == 1, result.output
    assert result.stderr.count("\n") == 1 and result.stdout == ""
    assert result.stderr.startswith(
        f"memgrid: error: {HUB_ID}: not in the local Hugging Face cache"
    )
    assert "the hub is unreachable (HF_HUB_OFFLINE is set)" in result.stderr
    assert f"`hf download {HUB_ID}` (same HF_HOME)" in result.stderr
    assert "or pass a local model folder with --model PATH" in result.stderr
    assert elapsed < 5, f"took {elapsed:.1f}s"
    assert sorted(tmp_path.rglob("*")) == before, "nothing is created: no project, no cache"


def test_a_revision_pin_is_named_in_the_download_advice(empty_hub: Path) -> None:
    with pytest.raises(HubUnreachableError, match=f"hf download {HUB_ID} --revision v2"):
        find_model(HUB_ID, revision="v2")


def test_clip_and_sscd_hub_weights_offline_are_the_same_one_line(empty_hub: Path) -> None:
    from memgrid.core.metrics.sscd import Sscd

    with pytest.raises(HubUnreachableError) as raised:
        hub_file("org/clip", ["open_clip_model.safetensors"], what="CLIP model hf-hub:org/clip")
    assert "`hf download org/clip open_clip_model.safetensors`" in str(raised.value)
    with pytest.raises(HubUnreachableError, match="pass a file to --sscd"):
        Sscd(path="hf-hub:org/sscd/sscd_disc_mixup.torchscript.pt").find_weights()
    with pytest.raises(InputError, match="expected hf-hub:ORG/REPO/FILE"):
        Sscd(path="hf-hub:sscd.pt").find_weights()


def cache_snapshot(home: Path, repo: str, model_dir: Path) -> Path:
    """Lay out `model_dir` in the hub cache as a download of `repo` at COMMIT would."""
    cached = home / "hub" / f"models--{repo.replace('/', '--')}"
    (cached / "refs").mkdir(parents=True)
    (cached / "refs" / "main").write_text(COMMIT)
    return Path(shutil.copytree(model_dir, cached / "snapshots" / COMMIT))


def test_a_cached_hub_model_loads_offline_as_the_same_model_as_its_folder(
    tmp_path: Path, runner: CliRunner, tiny_model_dir: Path, empty_hub: Path
) -> None:
    snapshot = cache_snapshot(empty_hub, "memgrid/tiny-sd", tiny_model_dir)
    source = find_model("memgrid/tiny-sd")
    assert (source.folder, source.commit, source.model_id) == (snapshot, COMMIT, "memgrid/tiny-sd")
    assert find_model("memgrid/tiny-sd", revision="main").commit == COMMIT

    prompts = write_prompts(tmp_path)
    common = ("--prompts", prompts, "--seeds", 1)
    project = tmp_path / "project"
    invoke(runner, generate_args(tiny_model_dir, project, *common))
    by_hub = generate_args(tiny_model_dir, project, *common, "--revision", "main")
    by_hub[by_hub.index("--model") + 1] = "memgrid/tiny-sd"
    again = invoke(runner, by_hub)
    assert "0 grids written" in again.stdout and "3 already complete" in again.stdout
    with open_project(project) as opened:
        grid = opened.store.grids.all()[0]
    assert grid.model == model_key(weights_fingerprint(tiny_model_dir))

    hub_project = tmp_path / "hub-project"
    by_hub[by_hub.index("--project") + 1] = str(hub_project)
    invoke(runner, by_hub)
    with open_project(hub_project) as opened:
        provenance = opened.store.grids.all()[0].provenance
    assert (provenance["model_id"], provenance["revision"]) == ("memgrid/tiny-sd", COMMIT)
    assert provenance["requested_revision"] == "main"
    assert provenance["model_path"] == str(snapshot)


def test_revision_is_for_hub_ids_and_devices_are_checked(tiny_model_dir: Path) -> None:
    with pytest.raises(InputError, match="--revision: pins a hub id's commit"):
        find_model(str(tiny_model_dir), revision="main")
    with pytest.raises(InputError, match="cuda:N"):
        resolve_device("cuda:one")
    import torch

    if not torch.cuda.is_available():
        with pytest.raises(UnavailableError, match="--device cuda:1: torch sees no CUDA device"):
            resolve_device("cuda:1")
    else:
        count = torch.cuda.device_count()
        assert resolve_device(f"cuda:{count - 1}") == f"cuda:{count - 1}"
        with pytest.raises(UnavailableError, match=f"torch sees {count} CUDA device"):
            resolve_device(f"cuda:{count}")


def test_online_the_hub_names_the_commit_and_a_dead_connection_uses_the_cache(
    tmp_path: Path, tiny_model_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The online branch with the hub's answers stood in for (nothing leaves the machine)."""
    from huggingface_hub import HfApi, constants

    home = tmp_path / "hf-home"
    monkeypatch.setenv("HF_HOME", str(home))
    monkeypatch.delenv("HF_HUB_OFFLINE")
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)

    class Info:
        sha = COMMIT

    asked: list[tuple[str, str | None]] = []

    def model_info(self: HfApi, repo: str, revision: str | None = None, timeout: float = 0):
        asked.append((repo, revision))
        return Info()

    downloads: list[tuple[str, str]] = []

    def download(repo: str, commit: str, cache_dir: str) -> str:
        downloads.append((repo, commit))
        assert cache_dir == str(home / "hub")
        return str(cache_snapshot(home, repo, tiny_model_dir))

    def resolve(repo: str, fetch=download) -> object:
        return resolve_snapshot(repo, "main", fetch, "model_index.json", "hf download X", "or not")

    monkeypatch.setattr(HfApi, "model_info", model_info)
    snapshot = resolve("memgrid/tiny-sd")
    assert (snapshot.commit, snapshot.requested_revision) == (COMMIT, "main")
    assert asked == [("memgrid/tiny-sd", "main")]
    assert downloads == [("memgrid/tiny-sd", COMMIT)]  # pinned to the commit the hub named

    def unreachable(self: HfApi, *args: object, **kwargs: object) -> None:
        raise ConnectionError("[Errno -2] Name or service not known")

    def no_download(*args: object) -> str:
        raise AssertionError("nothing is downloaded when the hub cannot be reached")

    monkeypatch.setattr(HfApi, "model_info", unreachable)
    assert resolve("memgrid/tiny-sd", no_download).folder == snapshot.folder  # the cache serves
    with pytest.raises(HubUnreachableError, match=r"cannot connect: \[Errno -2\] Name or service"):
        resolve("memgrid/never-fetched", no_download)


def test_a_file_download_without_network_is_unreachable_not_missing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Offline without HF_HUB_OFFLINE, the hub client says "not in the local cache" with an
    error that subclasses "no such file"; that is a connection problem, said as one."""
    import huggingface_hub
    from huggingface_hub import HfApi
    from huggingface_hub.errors import LocalEntryNotFoundError

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    # huggingface_hub read HF_HUB_OFFLINE once at import; other tests set it before that.
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))

    def offline(*args: object, **kwargs: object) -> str:
        raise LocalEntryNotFoundError("cannot reach the hub and the file is not cached")

    # The hub answered its first question, then the download lost the connection.
    monkeypatch.setattr(HfApi, "model_info", lambda self, *args, **kwargs: object())
    monkeypatch.setattr(huggingface_hub, "hf_hub_download", offline)
    with pytest.raises(HubUnreachableError, match="cannot connect"):
        hub_file("org/clip", ["open_clip_model.safetensors"], what="CLIP model hf-hub:org/clip")


def test_an_unreachable_hub_fails_at_its_first_question_not_after_the_downloads_retries(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Offline without HF_HUB_OFFLINE, huggingface_hub's download retries with backoff for
    23 s; one question without retries says the same at once."""
    import huggingface_hub
    from huggingface_hub import HfApi

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))

    def unreachable(self: HfApi, *args: object, **kwargs: object) -> None:
        raise ConnectionError("[Errno -2] Name or service not known")

    def no_download(*args: object, **kwargs: object) -> str:
        raise AssertionError("no download is tried once the hub cannot be reached")

    monkeypatch.setattr(HfApi, "model_info", unreachable)
    monkeypatch.setattr(huggingface_hub, "hf_hub_download", no_download)
    with pytest.raises(HubUnreachableError, match=r"cannot connect: \[Errno -2\] Name or"):
        hub_file("org/clip", ["open_clip_model.safetensors"], what="CLIP model hf-hub:org/clip")
