"""`memgrid doctor`: what this machine and terminal give memgrid, on one screen or as JSON."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Annotated

import typer

from memgrid.core.errors import InputError, one_line
from memgrid.tui.options import JsonOption, ProjectOption
from memgrid.tui.services.doctor import DoctorReport, ImageProtocolChoice, diagnose
from memgrid.tui.services.project import PROJECT_ENV, default_project_dir

GIB = 1 << 30


def register(app: typer.Typer) -> None:
    app.command("doctor")(doctor)


def doctor(
    project: ProjectOption = None,
    clip_model: Annotated[
        str | None,
        typer.Option("--clip-model", help="open_clip model whose weights to look for."),
    ] = None,
    clip_pretrained: Annotated[
        str | None,
        typer.Option("--clip-pretrained", help="Pretrained tag or checkpoint file to look for."),
    ] = None,
    sscd: Annotated[
        Path | None, typer.Option("--sscd", help="SSCD TorchScript file to look for.")
    ] = None,
    json_output: JsonOption = False,
) -> None:
    """What this machine, terminal and project give memgrid (versions, extras, GPU, weights,
    colour depth, image protocol, tmux, SSH, database, sharing, disk), with a fix for each
    problem. Run it in the terminal you annotate in."""
    report = diagnose(
        default_project_dir(project),
        image_protocol_in_this_terminal(),
        project_asked=project is not None or bool(os.environ.get(PROJECT_ENV)),
        stdout_is_terminal=sys.stdout.isatty(),
        clip_model=clip_model,
        clip_pretrained=clip_pretrained,
        sscd=sscd,
    )
    if json_output:
        typer.echo(json.dumps(report.to_dict(), indent=2))
    else:
        for line in report_lines(report):
            typer.echo(one_line(line))


def image_protocol_in_this_terminal() -> ImageProtocolChoice:
    """The protocol `memgrid annotate` would settle on here, by the app's own code."""
    from memgrid.tui.app.image_protocol import requested_protocol, settle_protocol

    try:
        requested = requested_protocol(None)
    except InputError as error:
        return ImageProtocolChoice("auto", settle_protocol("auto").protocol, problem=str(error))
    return ImageProtocolChoice(requested, settle_protocol(requested).protocol)


def report_lines(report: DoctorReport) -> list[str]:
    """One screen: a line per fact, then the problems and notes, each with its fix."""
    terminal = report.terminal
    gen_missing = bool(report.extras["gen"])
    lines = [
        f"memgrid    {report.memgrid} on Python {report.python} ({report.python_executable})",
        "extras     "
        + "   ".join(
            f"{extra}: {'installed' if not missing else 'missing'}"
            for extra, missing in report.extras.items()
        ),
        f"torch      {_torch_line(report)}",
    ]
    for weights in report.weights:
        where = weights.found or ("not checked (no gen extra)" if gen_missing else "not found")
        lines.append(f"weights    {weights.metric} {weights.asked_for}: {where}")
    tmux = "no"
    if terminal.tmux:
        tmux = f"yes, allow-passthrough {terminal.tmux_allow_passthrough or 'unknown'}"
    lines += [
        f"terminal   TERM={terminal.term or '(unset)'} COLORTERM={terminal.colorterm or '(unset)'}"
        f"{'' if terminal.stdout_is_terminal else ', output is not a terminal'}",
        f"colour     {terminal.colour_system or 'none'} ({terminal.colours:,} colours), "
        f"from {terminal.colour_because}{', NO_COLOR set' if terminal.no_color else ''}",
        f"images     seeds drawn with {terminal.image_protocol_in_use} "
        f"({'detected' if terminal.image_protocol_requested == 'auto' else 'forced'})",
        f"tmux       {tmux}",
        f"ssh        {'yes' if terminal.ssh else 'no'}",
    ]
    lines += _project_lines(report)
    serious = [advice for advice in report.advice if advice.serious]
    notes = [advice for advice in report.advice if not advice.serious]
    for title, group in (("problems", serious), ("notes", notes)):
        if group:
            lines.append(f"{title} ({len(group)}):")
            for advice in group:
                lines += [f"  {advice.area}: {advice.finding}", f"    fix: {advice.fix}"]
    if not serious:
        lines.append("no problems found")
    return lines


def _torch_line(report: DoctorReport) -> str:
    torch = report.torch
    if torch is None:
        return "not installed (the gen extra)" if report.extras["gen"] else "does not import"
    devices = ", ".join(torch.devices) or "no GPU (CPU only)"
    cuda = f", built for CUDA {torch.cuda}" if torch.cuda else ""
    return f"{torch.version}{cuda}: {devices}"


def _project_lines(report: DoctorReport) -> list[str]:
    health = report.project
    if health is None:
        return [f"project    none at {report.project_dir} (--project DIR or $MEMGRID_PROJECT)"]
    lines = [f"project    {health.root}"]
    database = health.database
    if database is not None:
        current = (
            "current"
            if database.schema_version == database.current_schema_version
            else f"this memgrid writes v{database.current_schema_version}"
        )
        lines.append(
            f"database   schema v{database.schema_version} ({current}), journal "
            f"{database.journal_mode}, integrity {'ok' if database.sound else 'FAILED'}"
        )
    sharing = (
        f"group {health.shared_with_group} may write" if health.shared_with_group else "owner only"
    )
    lines.append(f"sharing    {sharing}; umask {health.umask}")
    lines.append(f"disk       {health.free_bytes / GIB:.1f} GiB free")
    return lines
