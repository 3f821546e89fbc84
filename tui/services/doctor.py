"""`memgrid doctor`: what this machine, this terminal and this project give memgrid.

The facts are collected here, with no UI; tui/commands/doctor.py prints them on one screen or
as JSON. Every finding that limits memgrid comes with the fix, in the `Advice` list. Nothing
heavy is imported unless it is installed and reported on: torch only when the `gen` extra is
there (its version and devices are facts), open_clip only to look for the clip weights.
"""

from __future__ import annotations

import importlib.metadata
import os
import platform
import sys
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from memgrid.core.errors import InputError, UnavailableError
from memgrid.core.extras import NEEDED_BY, install_command, installed_extras
from memgrid.tui.services.advice import Advice
from memgrid.tui.services.project_health import ProjectHealth, check_project
from memgrid.tui.services.terminal import (
    COLOUR_SYSTEM_ENV,
    colour_depth,
    in_tmux,
    over_ssh,
    tmux_passthrough,
)

GIB = 1 << 30


def memgrid_version() -> str:
    try:
        return importlib.metadata.version("memgrid")
    except importlib.metadata.PackageNotFoundError:
        return "unknown (not installed: run from a source tree)"


@dataclass(frozen=True)
class TorchFacts:
    version: str
    cuda: str | None  # the CUDA torch was built with
    devices: list[str]  # "cuda:0 NVIDIA H200 (139.8 GiB)", "mps"


@dataclass(frozen=True)
class WeightsFacts:
    metric: str
    asked_for: str  # the model and tag, or the file
    found: str | None  # where they are on disk
    why_not: str | None = None


@dataclass(frozen=True)
class TerminalFacts:
    term: str | None
    colorterm: str | None
    stdout_is_terminal: bool
    colour_system: str | None
    colours: int
    colour_because: str
    no_color: bool
    image_protocol_requested: str
    image_protocol_in_use: str
    tmux: bool
    tmux_allow_passthrough: str | None
    ssh: bool


@dataclass(frozen=True)
class ImageProtocolChoice:
    """What the app would draw zoomed seeds with (settled by tui/app/image_protocol.py)."""

    requested: str  # auto, halfcell, sixel, tgp
    in_use: str
    problem: str | None = None  # a bad $MEMGRID_IMAGE_PROTOCOL, say


@dataclass
class DoctorReport:
    python: str
    python_executable: str
    memgrid: str
    platform: str
    extras: dict[str, list[str]]  # extra -> its missing modules ([] when installed)
    torch: TorchFacts | None
    weights: list[WeightsFacts]
    terminal: TerminalFacts
    project: ProjectHealth | None
    project_dir: str
    advice: list[Advice] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        facts = asdict(self)
        facts["extras"] = {
            extra: {"installed": not missing, "missing": missing}
            for extra, missing in self.extras.items()
        }
        return facts


def diagnose(
    project_dir: Path,
    image_protocol: ImageProtocolChoice,
    *,
    environ: Mapping[str, str] = os.environ,
    project_asked: bool = False,
    stdout_is_terminal: bool = False,
    clip_model: str | None = None,
    clip_pretrained: str | None = None,
    sscd: Path | None = None,
) -> DoctorReport:
    """Every fact `memgrid doctor` shows, with advice for what limits memgrid."""
    extras = {extra: list(missing) for extra, missing in installed_extras().items()}
    advice: list[Advice] = []
    torch = _torch_facts(advice) if not extras["gen"] else None
    report = DoctorReport(
        python=platform.python_version(),
        python_executable=sys.executable,
        memgrid=memgrid_version(),
        platform=platform.platform(terse=True),
        extras=extras,
        torch=torch,
        weights=_weights(extras, clip_model, clip_pretrained, sscd, advice),
        terminal=_terminal(environ, stdout_is_terminal, image_protocol, advice),
        project=check_project(project_dir, advice, asked=project_asked),
        project_dir=str(project_dir),
        advice=advice,
    )
    _advise_on_extras(extras, torch, advice)
    return report


def _advise_on_extras(
    extras: dict[str, list[str]], torch: TorchFacts | None, advice: list[Advice]
) -> None:
    for extra, missing in extras.items():
        if missing:
            needed_for = NEEDED_BY[extra]
            advice.append(
                Advice(
                    "extras",
                    f"the {extra} extra is not installed ({', '.join(missing)}): "
                    f"{needed_for} need it",
                    install_command(extra),
                    serious=False,
                )
            )
    if torch is not None and not torch.devices:
        advice.append(
            Advice(
                "torch",
                "no GPU visible to torch: generate runs on the CPU, far slower",
                "generate on a machine with a CUDA GPU (see `--shard` to split the work)",
                serious=False,
            )
        )


def _torch_facts(advice: list[Advice]) -> TorchFacts | None:
    """torch's version and devices; imported here, and only when the gen extra is installed."""
    try:
        import torch
    except Exception as error:  # a broken CUDA install fails in many ways at import
        advice.append(
            Advice("torch", f"torch is installed but does not import ({error})", "reinstall torch")
        )
        return None
    devices = []
    if torch.cuda.is_available():
        for index in range(torch.cuda.device_count()):
            properties = torch.cuda.get_device_properties(index)
            devices.append(
                f"cuda:{index} {properties.name} ({properties.total_memory / GIB:.1f} GiB)"
            )
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        devices.append("mps")
    return TorchFacts(version=str(torch.__version__), cuda=torch.version.cuda, devices=devices)


def _weights(
    extras: dict[str, list[str]],
    clip_model: str | None,
    clip_pretrained: str | None,
    sscd: Path | None,
    advice: list[Advice],
) -> list[WeightsFacts]:
    from memgrid.core.metrics.clip import DEFAULT_MODEL, DEFAULT_PRETRAINED, Clip
    from memgrid.core.metrics.sscd import Sscd

    clip = Clip(model=clip_model or DEFAULT_MODEL, pretrained=clip_pretrained or DEFAULT_PRETRAINED)
    metrics = [("clip", f"{clip.model_name} {clip.pretrained or ''}".strip(), clip)]
    metrics.append(("sscd", str(sscd) if sscd else "(no file given: --sscd PATH)", Sscd(path=sscd)))
    found = []
    for name, asked_for, metric in metrics:
        if extras["gen"]:
            facts = WeightsFacts(name, asked_for, None, "needs the gen extra")
        else:
            try:
                facts = WeightsFacts(name, asked_for, metric.find_weights())
            except (UnavailableError, InputError) as error:
                facts = WeightsFacts(name, asked_for, None, str(error))
        found.append(facts)
    clip_facts, sscd_facts = found
    if sscd is not None and not extras["gen"] and sscd_facts.found is None:
        advice.append(Advice("weights", f"sscd: {sscd_facts.why_not}", "check the --sscd path"))
    if not extras["gen"] and clip_facts.found is None:
        advice.append(
            Advice(
                "weights",
                f"no clip weights ({clip_facts.why_not}): `memgrid score` stores clip as "
                "unavailable and the semantic rules do not fire",
                "copy the weights into the Hugging Face cache of this machine, or pass "
                "--clip-pretrained FILE to memgrid score",
                serious=False,
            )
        )
    return found


def _terminal(
    environ: Mapping[str, str],
    stdout_is_terminal: bool,
    image_protocol: ImageProtocolChoice,
    advice: list[Advice],
) -> TerminalFacts:
    depth = colour_depth(environ)
    tmux = in_tmux(environ)
    passthrough = tmux_passthrough(environ) if tmux else None
    ssh = over_ssh(environ)
    facts = TerminalFacts(
        term=environ.get("TERM"),
        colorterm=environ.get("COLORTERM"),
        stdout_is_terminal=stdout_is_terminal,
        colour_system=depth.system,
        colours=depth.colours,
        colour_because=depth.because,
        no_color=depth.monochrome,
        image_protocol_requested=image_protocol.requested,
        image_protocol_in_use=image_protocol.in_use,
        tmux=tmux,
        tmux_allow_passthrough=passthrough,
        ssh=ssh,
    )
    if depth.ignored_override:
        advice.append(
            Advice(
                "colour",
                f"{COLOUR_SYSTEM_ENV}={depth.ignored_override} is not a colour system Textual "
                "knows",
                f"unset {COLOUR_SYSTEM_ENV}, or set it to truecolor, 256 or standard",
            )
        )
    if not depth.truecolor:
        advice.append(Advice("colour", _colour_finding(depth.describe()), _colour_fix(tmux, ssh)))
    if image_protocol.problem:
        advice.append(
            Advice(
                "images", image_protocol.problem, "unset MEMGRID_IMAGE_PROTOCOL or fix its value"
            )
        )
    elif image_protocol.in_use == "halfcell":
        advice.append(
            Advice(
                "images",
                "zoom draws half-cell blocks (two pixels per character): a zoomed seed looks "
                "blocky in this terminal",
                _image_fix(tmux, passthrough),
                serious=False,
            )
        )
    return facts


def _colour_finding(depth: str) -> str:
    return f"colour depth {depth}: seed thumbnails are truecolor and will look posterised"


def _colour_fix(tmux: bool, ssh: bool) -> str:
    fix = "export COLORTERM=truecolor if your terminal shows 24-bit colour (most do)"
    if ssh:
        fix += "; SSH does not pass COLORTERM on: add `SendEnv COLORTERM` to ~/.ssh/config"
    if tmux:
        fix += "; in tmux add `set -as terminal-features ',*:RGB'` to ~/.tmux.conf and restart it"
    return fix


def _image_fix(tmux: bool, passthrough: str | None) -> str:
    fix = "use a terminal with Sixel (WezTerm, foot, Konsole, xterm -ti vt340) or kitty graphics"
    if tmux and passthrough not in ("on", "all"):
        state = "off" if passthrough == "off" else "unknown (tmux before 3.3?)"
        fix += (
            f"; tmux's allow-passthrough is {state}: `tmux set -g allow-passthrough on` "
            "lets graphics reach the terminal"
        )
    return fix
